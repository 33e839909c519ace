"""One job, one trainer (issue 13, item 9): the job lock itself, without training.

Another process holding the lock (alive, then killed) and the sweeps that use it (two at
once, kill -9 of the owner, stacked members) are in tests/e2e/test_job_locks.py.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from reglab import locks
from reglab.locks import LOCK, JobLock, Owner
from reglab.rerun import set_aside


def _fake_lock(job: Path, owner: dict, age_s: float = 0.0) -> None:
    job.mkdir(parents=True, exist_ok=True)
    (job / LOCK).write_text(json.dumps(owner))
    then = time.time() - age_s
    os.utime(job / LOCK, (then, then))


def test_the_owner_is_named_and_the_lock_is_removed_on_release(tmp_path):
    lock = JobLock(tmp_path / "job")
    assert lock.acquire() is None and lock.previous is None
    written = json.loads((tmp_path / "job" / LOCK).read_text())
    assert written["host"] == socket.gethostname() and written["pid"] == os.getpid()
    assert written["started"] == pytest.approx(time.time(), abs=60)
    lock.release()
    assert not (tmp_path / "job" / LOCK).exists()


def test_heartbeat_refreshes_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "HEARTBEAT_S", 0.05)
    lock = JobLock(tmp_path / "job")
    locks._HEARTBEAT.thread = None  # a new thread with the short period
    assert lock.acquire() is None
    old = time.time() - 3600
    os.utime(lock.path, (old, old))
    deadline = time.time() + 60  # bounds a failure only: the period is 0.05 s
    while lock.path.stat().st_mtime < time.time() - 60:
        assert time.time() < deadline, "the lock was not refreshed"
        time.sleep(0.05)
    lock.release()


def test_another_hosts_lock_holds_until_stale(tmp_path):
    """A file system whose flock does not reach across hosts: the refresh time decides."""
    other = {"host": "node-17", "pid": 4242, "started": time.time()}
    _fake_lock(tmp_path / "fresh", other, age_s=10)
    owner = JobLock(tmp_path / "fresh").acquire()
    assert owner is not None and str(owner) == "node-17 4242"
    _fake_lock(tmp_path / "stale", other, age_s=locks.STALE_S + 60)
    lock = JobLock(tmp_path / "stale")
    assert lock.acquire() is None and lock.previous.host == "node-17"
    lock.release()


def test_a_requeued_slurm_job_takes_its_own_lock_over(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "981")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    _fake_lock(tmp_path / "job", {"host": "node-3", "pid": 7, "slurm_job": "981"})
    lock = JobLock(tmp_path / "job")
    assert lock.acquire() is None and lock.previous.slurm_job == "981"
    lock.release()


def test_a_reused_pid_is_not_the_owner(tmp_path):
    """Same host, the pid alive but started later than the owner: a dead owner."""
    _fake_lock(tmp_path / "job", {"host": socket.gethostname(), "pid": 1, "pid_start": "x"})
    lock = JobLock(tmp_path / "job")
    assert lock.acquire() is None
    lock.release()


def test_setting_an_earlier_run_aside_keeps_the_lock(tmp_path):
    job = tmp_path / "job"
    lock = JobLock(job)
    assert lock.acquire() is None
    (job / "summary.json").write_text("{}")
    moved = set_aside(job)
    assert (job / LOCK).exists() and (moved / "summary.json").exists()
    lock.release()
    assert not (job / LOCK).exists()


def test_owner_description():
    owner = Owner("h", 12, started=0.0)
    assert str(owner) == "h 12" and owner.describe().startswith("host h pid 12, since ")
