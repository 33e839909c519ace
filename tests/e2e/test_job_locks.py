"""One job, one trainer (issue 13, item 9), through the real CLI and the stacked engine:
two sweeps into one folder train each job once; a killed owner's job is taken over and
resumes from its checkpoint; a stack's members lock their own folders.

First, without training: another process holds the lock; alive it keeps the job, killed
(kill -9) it loses it. The lock's own rules (stale owners, other hosts, SLURM requeues) are
tested in tests/unit/test_locks.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import compose_config, read_summary, run_cli, wait_for

from reglab import locks
from reglab.locks import LOCK, JobLock

HOST = socket.gethostname()

TINY = [
    "data=digits",
    "model.hidden=[16]",
    "trainer.max_epochs=-1",
    "checkpoint.every_n_steps=10",
    "trainer.enable_progress_bar=false",
    "probe_size=0",
    "threads=1",
]


#: Another process: takes the lock of sys.argv[1], says so, and holds it until killed.
HOLD = """
import sys, time
from reglab.locks import JobLock
print("held" if JobLock(sys.argv[1]).acquire() is None else "refused", flush=True)
time.sleep(300)
"""


def _hold(job: Path) -> subprocess.Popen:
    """Start a process holding ``job``'s lock; return once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(job)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/job (killed at the end)."""
    job = tmp_path / "job"
    proc = _hold(job)
    yield job, proc
    proc.kill()
    proc.wait()


def test_a_live_owner_keeps_the_job_and_a_killed_one_loses_it(holder):
    job, proc = holder
    owner = JobLock(job).acquire()
    assert owner is not None and owner.pid == proc.pid and owner.host == socket.gethostname()
    assert locks.holder(job) == owner  # judged from the file, as the sweep report does
    proc.kill()  # kill -9: the lock file stays, naming a dead pid
    proc.wait()
    assert json.loads((job / LOCK).read_text())["pid"] == proc.pid
    assert locks.holder(job) is None
    lock = JobLock(job)
    assert lock.acquire() is None
    assert lock.previous is not None and lock.previous.pid == proc.pid
    lock.release()


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "reglab.train", *args],
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _starts(job: Path) -> int:
    """How many times the job was trained: its train.log's start lines."""
    return (job / "train.log").read_text().count("training from ")


#: ``reglab-train`` that stops itself (SIGSTOP) once it holds its first job's lock: it
#: holds that job, whatever the machine's speed, until the test sends SIGCONT.
STOP_AT_FIRST_LOCK = """
import os, signal, sys
from reglab import locks
from reglab.train import main

acquire = locks.JobLock.acquire

def acquire_then_stop(self):
    owner = acquire(self)
    if owner is None and not getattr(acquire_then_stop, "stopped", False):
        acquire_then_stop.stopped = True
        os.kill(os.getpid(), signal.SIGSTOP)
    return owner

locks.JobLock.acquire = acquire_then_stop
sys.argv[0] = "reglab-train"
main()
"""


def _wait_stopped(proc: subprocess.Popen, timeout: float = 600) -> None:
    """Until ``proc`` is stopped (state T in /proc); the timeout only bounds a failure."""
    deadline = time.monotonic() + timeout
    stat = Path(f"/proc/{proc.pid}/stat")
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, f"not stopped after {timeout} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_two_sweeps_into_one_folder_train_each_job_once(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, "trainer.max_steps=300", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    a = subprocess.Popen(
        [sys.executable, "-c", STOP_AT_FIRST_LOCK, *args],
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_stopped(a)  # A holds job 0 (and stopped there) while B runs through the sweep
    assert len(list(sweep.glob(f"*seed=0*/{LOCK}"))) == 1
    try:
        b = run_cli(*args, cwd=tmp_path)
    finally:
        a.send_signal(signal.SIGCONT)
    a_out, a_err = a.communicate(timeout=300)
    assert a.returncode == 0, a_err[-3000:]
    # B skipped job 0, said where it runs, did not count it as completed, and exits 1.
    assert b.returncode == 1, b.stderr[-3000:]
    assert f"1/2 running elsewhere ({HOST} {a.pid})" in b.stdout, b.stdout
    assert "2/2 completed, test " in b.stdout
    assert "1 completed, 1 running elsewhere;" in b.stdout
    assert "reglab: 1 jobs of the sweep did not complete" in b.stderr
    # A then found job 1 completed by B: every job trained exactly once.
    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert len(jobs) == 2 and all(read_summary(j)["status"] == "completed" for j in jobs)
    assert [_starts(j) for j in jobs] == [1, 1]
    assert not list(sweep.glob(f"*/{LOCK}"))  # released when done
    assert "2/2 jobs already completed" not in a_out and "2 completed;" in a_out


@pytest.mark.slow
def test_a_killed_owners_job_is_taken_over_and_resumes(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    owner = _start(*TINY, "trainer.max_steps=2000", f"hydra.run.dir={run_dir}")
    wait_for(run_dir / "checkpoints" / "last.ckpt", owner)
    owner.send_signal(signal.SIGSTOP)
    # While it lives, another run into its folder refuses, naming it.
    other = run_cli(*TINY, "trainer.max_steps=2000", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert other.returncode == 1
    assert (
        other.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"reglab: run running elsewhere: {run_dir} is being trained by host "
            f"{HOST} pid {owner.pid}, since "
        )
    )
    owner.kill()  # kill -9: its lock file stays behind, naming a dead process
    owner.wait(timeout=60)
    assert json.loads((run_dir / LOCK).read_text())["pid"] == owner.pid
    again = run_cli(*TINY, "trainer.max_steps=2000", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"taking over from host {HOST} pid {owner.pid}" in again.stdout
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["metrics"]["steps"] == 2000
    assert summary["resumed_from_step"] > 0 and summary["resumed_from_step"] % 10 == 0
    assert _starts(run_dir) == 2 and not (run_dir / LOCK).exists()


@pytest.mark.slow
def test_a_stacks_members_lock_their_own_folders(tmp_path, data_dir):
    from reglab.member import Job
    from reglab.run import run_stack

    jobs = [
        Job(compose_config(*TINY[:2], "trainer.max_steps=20", f"seed={seed}"), tmp_path / str(seed))
        for seed in (0, 1)
    ]
    holder = _hold(tmp_path / "0")
    try:
        held, done = run_stack(jobs)
        assert held["status"] == f"running elsewhere ({HOST} {holder.pid})"
        assert not (tmp_path / "0" / "summary.json").exists()  # nothing written for it
        assert done["status"] == "completed" and done["stack"]["size"] == 1
    finally:
        holder.kill()
        holder.wait()
    first, second = run_stack(jobs)  # its owner gone: taken over; the other is skipped
    assert first["status"] == "completed" and first["stack"]["size"] == 1
    assert second == read_summary(tmp_path / "1")
