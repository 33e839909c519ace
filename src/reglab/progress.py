"""A sweep's console: one line per finished job, whatever the launcher.

:class:`SweepWatcher` is a thread of the launching process (started by
:class:`reglab.sweep.SweepReport` when the multirun starts) that polls the sweep's job
folders for new ``summary.json`` files, and for the mark of a job skipped because another
process trains it (:mod:`reglab.locks`). It sees jobs end in this process (``local``,
``stacked``), in worker processes (``joblib``, ``stacked`` with ``n_procs``) and on other
hosts (``submitit_local``, ``slurm``, ``stacked_slurm``, while the launcher waits) alike::

    [...] - 3/12 completed, test 1.52 %, job 41s | elapsed 2m05s, ETA 6m15s | seed=1,...

Inside a sweep a job's own lines (start, resume, test error) go to its ``train.log`` only
(:func:`quiet_job_console`); warnings and errors still reach the console. Imports no torch.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reglab import jobs
from reglab.locks import ELSEWHERE, SWEEP_ENV
from reglab.summary import (
    COMPLETED,
    DIVERGED,
    FAILED,
    FINAL,
    RUNNING_ELSEWHERE,
    SUMMARY,
    read_summary,
)

POLL_S = 2.0


class _Stdout(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` is at the time (pytest swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def sweep_logger() -> logging.Logger:
    """``reglab.sweep``: the sweep's own lines, on stdout, never in a job's ``train.log``."""
    logger = logging.getLogger("reglab.sweep")
    if not logger.handlers:
        handler = _Stdout()
        handler.setFormatter(
            logging.Formatter("[%(asctime)s][reglab][%(levelname)s] - %(message)s")
        )
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logger.disabled = False  # a logging config with disable_existing_loggers must not mute it
    return logger


def say(message: str, level: int = logging.INFO) -> None:
    """A sweep line on stdout, clearing and redrawing any progress bar of this process."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is None:
        sweep_logger().log(level, message)
        return
    with tqdm.tqdm.external_write_mode(file=sys.stdout):
        sweep_logger().log(level, message)


def duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``; ``?`` if unknown."""
    if seconds is None:
        return "?"
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(elapsed: float, done_here: int, left: int) -> float | None:
    """Seconds left at the rate of the jobs finished by this sweep so far (None: no rate
    yet). Parallel launchers finish several jobs per job time; the rate counts that."""
    if left <= 0:
        return 0.0
    return elapsed / done_here * left if done_here else None


def job_line(
    k: int, n: int | None, status: str, summary: dict | None, elapsed: float, left_s, name: str
) -> str:
    """``k/N status[, test x %][, job t] | elapsed e, ETA r | job``."""
    summary = summary or {}
    parts = [f"{k}/{n if n is not None else '?'} {status}"]
    error = (summary.get("metrics") or {}).get("test_error")
    if status == COMPLETED and isinstance(error, int | float):
        parts.append(f"test {error:.2f} %")
    elif status in (FAILED, DIVERGED) and summary.get("error"):
        parts.append(str(summary["error"]).splitlines()[0][:100])
    if isinstance(summary.get("wall_time_s"), int | float):
        parts.append(f"job {duration(summary['wall_time_s'])}")
    return f"{', '.join(parts)} | elapsed {duration(elapsed)}, ETA {duration(left_s)} | {name}"


def elsewhere(job_dir: Path, sweep: str) -> str | None:
    """``running elsewhere (host pid)`` if a process of ``sweep`` skipped the job."""
    try:
        record = json.loads((Path(job_dir) / ELSEWHERE).read_text())
        if record.get("sweep") != sweep:
            return None
        return f"{RUNNING_ELSEWHERE} ({record['host']} {record['pid']})"
    except (OSError, ValueError, KeyError, AttributeError):
        return None


class SweepWatcher:
    """Polls a sweep's job folders; one line per job that ends (see the module)."""

    current: SweepWatcher | None = None  # one sweep at a time in a process

    def __init__(
        self,
        sweep_dir: Path,
        expected: dict[frozenset[str], Any] | None,
        excluded: frozenset[str] = frozenset(),
        emit: Callable[[str], None] | None = None,
    ) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.expected = expected
        self.excluded = excluded
        self.n = len(expected) if expected is not None else None
        self.emit = emit or say
        self.started = time.time()
        self.sweep_id = f"{socket.gethostname()}-{os.getpid()}-{self.started:.6f}"
        self.clock = time.monotonic()
        self.seen: dict[Path, tuple] = {}  # job → summary (mtime, size) at last look
        self.keys: dict[Path, frozenset[str] | None] = {}
        self.outcome: dict[Path, str] = {}  # job → how it ended in this sweep
        self.before: set[Path] = set()  # completed before the sweep began
        self.stop_event = threading.Event()
        self.mutex = threading.Lock()
        self.thread: threading.Thread | None = None
        self._snapshot()

    # -- the job folders ----------------------------------------------------------------
    def _key(self, job: Path) -> frozenset[str] | None:
        if job not in self.keys or self.keys[job] is None:
            recorded = read_summary(job) or {}
            overrides = recorded.get("overrides")
            if overrides is None:
                overrides = jobs.load_yaml(job / jobs.OVERRIDES) or None
            self.keys[job] = None if overrides is None else jobs.job_key(overrides, self.excluded)
        return self.keys[job]

    def _ours(self, job: Path) -> bool:
        if self.expected is None:
            return True
        key = self._key(job)
        return key is not None and key in self.expected

    def _stamp(self, job: Path) -> tuple | None:
        try:
            st = (job / SUMMARY).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _snapshot(self) -> None:
        if not self.sweep_dir.is_dir():
            return
        for job in jobs.job_dirs(self.sweep_dir):
            self.seen[job] = self._stamp(job)
            completed = (read_summary(job) or {}).get("status") == COMPLETED
            if self.seen[job] and completed and self._ours(job):
                self.before.add(job)

    # -- polling ------------------------------------------------------------------------
    def poll(self, live: bool = False) -> None:
        """Look once; emit a line for each job that ended since the last look."""
        with self.mutex:
            if not self.sweep_dir.is_dir() or (live and self.stop_event.is_set()):
                return
            ended: list[tuple[Path, str, dict | None]] = []
            for job in jobs.job_dirs(self.sweep_dir):
                if job in self.outcome:
                    continue
                stamp = self._stamp(job)
                if stamp is not None and stamp != self.seen.get(job):
                    self.seen[job] = stamp
                    summary = read_summary(job) or {}
                    if summary.get("status") in FINAL and self._ours(job):
                        self.before.discard(job)  # rerun after all (its config changed)
                        ended.append((job, summary["status"], summary))
                        continue
                status = None if job in self.before else elsewhere(job, self.sweep_id)
                if status is not None and self._ours(job):
                    ended.append((job, status, None))
            self._emit_ended(ended)

    def _emit_ended(self, ended: list[tuple[Path, str, dict | None]]) -> None:
        """k/N lines; the ETA counts every job seen ended by now (a stack ends many at once)."""
        done = len(self.before) + len(self.outcome)
        self.outcome |= {job: status for job, status, _ in ended}
        elapsed = time.monotonic() - self.clock
        trained = sum(s in FINAL for s in self.outcome.values())
        left = None if self.n is None else self.n - len(self.before) - len(self.outcome)
        remaining = None if left is None else eta(elapsed, trained, left)
        for k, (job, status, summary) in enumerate(ended, done + 1):
            name = str(job.relative_to(self.sweep_dir))
            self.emit(job_line(k, self.n, status, summary, elapsed, remaining, name))

    # -- the thread ---------------------------------------------------------------------
    def start(self) -> SweepWatcher:
        """Poll in a thread; the sweep's jobs (this process's children) see its id."""
        if SweepWatcher.current is not None:  # a sweep that ended without its end callback
            SweepWatcher.current.stop_event.set()
        SweepWatcher.current = self
        os.environ[SWEEP_ENV] = self.sweep_id
        if self.before:
            self.emit(f"{len(self.before)}/{self.n or '?'} jobs already completed")
        self.thread = threading.Thread(target=self._run, name="reglab-sweep", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_event.wait(POLL_S):
            try:
                self.poll(live=True)
            except Exception as error:  # never take the sweep down
                sweep_logger().warning("sweep progress: %s", error)

    def stop(self) -> None:
        """Stop polling, after a last look."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.poll()
        if os.environ.get(SWEEP_ENV) == self.sweep_id:
            del os.environ[SWEEP_ENV]


# -- a job's console inside a sweep ----------------------------------------------------------


class _JobLines(logging.Filter):
    """Drops reglab's INFO lines of a job (they stay in its train.log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name != "reglab"


def quiet_job_console() -> None:
    """In a sweep: the console handlers skip reglab's per-job INFO lines."""
    for handler in logging.getLogger().handlers:
        console = isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        )
        if console and not any(isinstance(f, _JobLines) for f in handler.filters):
            handler.addFilter(_JobLines())


#: The per-step bar is shown only where a job trains in the launching process.
_BAR = {"allowed": True}


def bar_allowed() -> bool:
    return _BAR["allowed"]


def no_bar() -> None:
    """This process trains a sweep's jobs in a worker: no progress bars."""
    _BAR["allowed"] = False
