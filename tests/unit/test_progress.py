"""A sweep's console (issue 13, item 3): one line per finished job with k/N, status, test
error, job time, elapsed and ETA, from the job folders alone (so for every launcher).

The real launchers are run in tests/e2e/test_job_locks.py (local), tests/e2e/test_sweeps.py
(local, joblib) and tests/e2e/test_stacked_launcher.py (stacked, in this process, in worker
processes and as submitit jobs)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from reglab import progress
from reglab.jobs import job_key
from reglab.locks import Owner, note_elsewhere
from reglab.progress import SweepWatcher, duration, eta, job_line


def test_durations_and_eta():
    assert [duration(s) for s in (None, 0.4, 42, 185, 7620)] == ["?", "0s", "42s", "3m05s", "2h07m"]
    assert eta(100.0, 0, 5) is None  # no job finished here yet: no rate
    assert eta(100.0, 2, 6) == pytest.approx(300.0)
    assert eta(100.0, 2, 0) == 0.0


def test_a_line_says_what_matters():
    done = {"metrics": {"test_error": 1.234}, "wall_time_s": 41.0}
    line = job_line(3, 12, "completed", done, 125.0, 375.0, "seed=1")
    assert line == "3/12 completed, test 1.23 %, job 41s | elapsed 2m05s, ETA 6m15s | seed=1"
    failed = {"error": "loss is nan at step 3\nmore", "wall_time_s": 2.0}
    line = job_line(4, None, "diverged", failed, 1.0, None, "x")
    assert line == "4/? diverged, loss is nan at step 3, job 2s | elapsed 1s, ETA ? | x"


def _job(sweep: Path, name: str, status: str | None = None, **extra) -> Path:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True, exist_ok=True)
    (job / ".hydra" / "overrides.yaml").write_text(f"- {name}\n")
    if status is not None:
        summary = {"status": status, "overrides": [name], "metrics": {"test_error": 2.0}} | extra
        (job / "summary.json").write_text(json.dumps(summary))
    return job


def test_the_watcher_emits_a_line_per_job_end_once(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    _job(sweep, "seed=0", "completed")  # completed before this sweep
    _job(sweep, "seed=9", "completed")  # another sweep's job: not counted
    _job(sweep, "seed=3", "failed")  # failed before: this sweep tries again
    expected = {job_key([f"seed={k}"]): [f"seed={k}"] for k in range(4)}
    lines: list[str] = []
    watcher = SweepWatcher(sweep, expected, emit=lines.append)
    monkeypatch.setenv("REGLAB_SWEEP", watcher.sweep_id)  # as start() sets it for the jobs
    watcher.poll()
    assert lines == []
    _job(sweep, "seed=1", "completed", wall_time_s=3.0)
    _job(sweep, "seed=2")  # running
    watcher.poll()
    watcher.poll()
    assert len(lines) == 1 and lines[0].startswith("2/4 completed, test 2.00 %, job 3s | elapsed ")
    time.sleep(0.01)
    _job(sweep, "seed=3", "diverged", error="loss is inf")
    os.utime(sweep / "seed=3" / "summary.json", (time.time() + 5, time.time() + 5))
    note_elsewhere(sweep / "seed=2", Owner("node-1", 77))
    watcher.stop()
    assert len(lines) == 3  # in the order of the folders
    assert lines[1].startswith("3/4 running elsewhere (node-1 77) | elapsed ")
    assert lines[2].startswith("4/4 diverged, loss is inf | elapsed ")
    assert lines[2].endswith("ETA 0s | seed=3")


def test_another_sweeps_mark_of_running_elsewhere_is_not_this_ones(tmp_path, monkeypatch):
    """Two sweeps into one folder: the one that trains the job ignores the other's mark."""
    sweep = tmp_path / "sweep"
    job = _job(sweep, "seed=0")
    monkeypatch.setenv("REGLAB_SWEEP", "the-other-sweep")
    note_elsewhere(job, Owner("node-1", 77))
    lines: list[str] = []
    watcher = SweepWatcher(sweep, None, emit=lines.append)
    watcher.poll()
    assert lines == []


def test_sweep_lines_go_to_stdout_and_not_to_a_jobs_log(tmp_path, capsys):
    log_file = tmp_path / "train.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    try:
        progress.say("1/2 completed")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert "[reglab][INFO] - 1/2 completed" in capsys.readouterr().out
    assert log_file.read_text() == ""


def test_in_a_sweep_a_jobs_info_lines_stay_in_its_log(tmp_path, capsys):
    import sys

    root = logging.getLogger()
    console = logging.StreamHandler(sys.stdout)
    log_file = logging.FileHandler(tmp_path / "train.log")
    root.addHandler(console)
    root.addHandler(log_file)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        progress.quiet_job_console()
        logging.getLogger("reglab").info("training from scratch")
        logging.getLogger("reglab").warning("the config changed")
    finally:
        root.removeHandler(console)
        root.removeHandler(log_file)
        log_file.close()
        root.setLevel(level)
    out = capsys.readouterr().out
    assert "the config changed" in out and "training from scratch" not in out
    assert "training from scratch" in (tmp_path / "train.log").read_text()


def test_the_sweep_callback_pickles_while_its_watcher_runs(tmp_path):
    """hydra-submitit pickles the launcher with Hydra's callbacks (launcher=slurm)."""
    import pickle

    from reglab.sweep import SweepReport

    watcher = SweepWatcher(tmp_path, None, emit=lambda line: None).start()
    try:
        assert isinstance(pickle.loads(pickle.dumps(SweepReport())), SweepReport)
    finally:
        watcher.stop()
        SweepWatcher.current = None
