"""One job, one trainer: a lock file in the job's folder names the process that trains it.

``<job>/.lock`` holds its owner (host, pid, start time, SLURM job) and is refreshed every
:data:`HEARTBEAT_S` seconds while the job trains (a daemon thread touches it). The owner
also holds an ``flock`` on it, which the kernel drops when the process dies, ``kill -9``
included. Another process that reaches the job:

- finds the flock held: the owner is alive; the job is *running elsewhere* and skipped;
- gets the flock, but the file names a live process on this host, or another host's
  process that refreshed it within :data:`STALE_S` (a file system whose locks do not reach
  across hosts): also running elsewhere;
- otherwise the owner is gone (dead pid on this host, no refresh for :data:`STALE_S`, or an
  earlier attempt of the same SLURM job, requeued): it takes the job over, and training
  resumes from the job's checkpoint.

The owner removes the file when it is done with the job. Imports no torch.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from reglab.summary import RUNNING_ELSEWHERE, elsewhere_summary

LOCK = ".lock"
#: Written by a process that skipped a job trained elsewhere (read by the sweep's progress).
ELSEWHERE = ".running_elsewhere"
#: The sweep a process works for (set by the sweep's launching process, inherited by its jobs).
SWEEP_ENV = "REGLAB_SWEEP"
HEARTBEAT_S = 30.0  # seconds between refreshes of a held lock
STALE_S = 600.0  # a lock not refreshed for this long has lost its owner


@dataclass(frozen=True)
class Owner:
    """Who holds (or held) a job's lock."""

    host: str
    pid: int
    started: float = 0.0
    slurm_job: str | None = None
    pid_start: str | None = None  # the process's start tick (/proc), against pid reuse
    refreshed: float = 0.0  # the lock file's mtime

    def __str__(self) -> str:
        return f"{self.host} {self.pid}"

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"host {self.host} pid {self.pid}, since {since}"


def me() -> Owner:
    """This process as a lock owner."""
    slurm = os.environ.get("SLURM_ARRAY_JOB_ID") and os.environ.get("SLURM_ARRAY_TASK_ID")
    slurm_job = (
        f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        if slurm
        else os.environ.get("SLURM_JOB_ID")
    )
    pid = os.getpid()
    return Owner(socket.gethostname(), pid, time.time(), slurm_job, _pid_start(pid))


def _pid_start(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def _alive(owner: Owner) -> bool:
    """Is ``owner`` (a process on this host) still running?"""
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _pid_start(owner.pid)
    return owner.pid_start is None or start is None or start == owner.pid_start


def read_owner(job_dir: Path) -> Owner | None:
    """The owner named in the job's lock file (None: no lock, or not readable yet)."""
    try:
        fd = os.open(Path(job_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _owner(fd)
    finally:
        os.close(fd)


def _owner(fd: int) -> Owner | None:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"null")
        return Owner(
            str(data["host"]),
            int(data["pid"]),
            float(data.get("started", 0.0)),
            data.get("slurm_job"),
            data.get("pid_start"),
            os.fstat(fd).st_mtime,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def gone(owner: Owner | None, now: float | None = None) -> bool:
    """True if the lock named ``owner`` can be taken (its flock is free): see the module."""
    if owner is None:
        return True
    mine = me()
    if (owner.host, owner.pid) == (mine.host, mine.pid):
        return True
    if owner.slurm_job and owner.slurm_job == mine.slurm_job:
        return True  # the same SLURM job, requeued after a hard kill
    fresh = (now or time.time()) - owner.refreshed < STALE_S
    if owner.host == mine.host:
        return not (fresh and _alive(owner))
    return not fresh


def holder(job_dir: Path) -> Owner | None:
    """The live owner of the job's lock, judged from the file alone (None: not held).

    Never probes the flock: a probe could make a process acquiring it that moment skip
    the job."""
    owner = read_owner(job_dir)
    return owner if owner is not None and not gone(owner) else None


class JobLock:
    """The lock of one job folder, held by this process between acquire and release."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = Path(job_dir)
        self.path = self.job_dir / LOCK
        self.fd: int | None = None
        self.previous: Owner | None = None  # the gone owner this lock was taken from

    def acquire(self) -> Owner | None:
        """Take the lock; returns None, or the owner that holds it (the job is running
        elsewhere). ``previous`` is then the earlier owner taken over, if any."""
        self.job_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                return read_owner(self.job_dir) or Owner("an unknown host", 0)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released (removed) between our open and flock: try again
                os.close(fd)
                continue
            owner = _owner(fd)  # read through our fd: on NFS, closing another drops the lock
            if os.fstat(fd).st_size and not gone(owner):
                os.close(fd)
                return owner
            self.previous = owner
            self.fd = fd
            self._write(me())
            _HEARTBEAT.add(self)
            return None

    def _write(self, owner: Owner) -> None:
        data = {k: v for k, v in asdict(owner).items() if k != "refreshed"}
        payload = json.dumps(data).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, payload, 0)
        os.fsync(self.fd)

    def refresh(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.utime(self.fd)

    def release(self) -> None:
        """Remove the lock file (if still ours) and drop the flock."""
        if self.fd is None:
            return
        _HEARTBEAT.discard(self)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


def skipped(job_dir: Path, owner: Owner, overrides: list[str]) -> dict:
    """What a process that skips a job trained elsewhere returns (and writes nothing but
    its mark for the sweep's progress lines)."""
    note_elsewhere(job_dir, owner)
    logging.getLogger("reglab").info(
        "%s: %s (%s); skipping", job_dir, RUNNING_ELSEWHERE, owner.describe()
    )
    return elsewhere_summary(job_dir, owner, overrides)


def note_elsewhere(job_dir: Path, owner: Owner) -> None:
    """Record that this process skipped the job because ``owner`` trains it."""
    record = {
        "host": owner.host,
        "pid": owner.pid,
        "seen_by": str(me()),
        "sweep": os.environ.get(SWEEP_ENV),
    }
    tmp = Path(job_dir) / f"{ELSEWHERE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, Path(job_dir) / ELSEWHERE)


class _Heartbeat:
    """One daemon thread per process refreshing every held lock."""

    def __init__(self) -> None:
        self.locks: set[JobLock] = set()
        self.mutex = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, lock: JobLock) -> None:
        with self.mutex:
            self.locks.add(lock)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="reglab-lock", daemon=True)
                self.thread.start()

    def discard(self, lock: JobLock) -> None:
        with self.mutex:
            self.locks.discard(lock)

    def _run(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self.mutex:
                held = list(self.locks)
            for lock in held:
                lock.refresh()


_HEARTBEAT = _Heartbeat()
