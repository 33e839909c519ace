"""Interruption, resumption, divergence and re-runs lose nothing (issue: reliability).

The runs that are stopped (a signal, kill -9) are processes of their own; every other run,
the reruns that resume them included, is ``reglab-train`` in this process (inprocess.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_summary, wait_for
from inprocess import run_main, run_main_ok

pytestmark = pytest.mark.slow

# 4 epochs of 25 steps; deterministic CPU kernels, dropout on, momentum and a schedule.
RUN = [
    "data.train_size=2500",
    "data.val_size=1000",
    "trainer.max_epochs=4",
    "trainer.deterministic=true",
    "dropout=standard",
    "scheduler=exponential",
    "threads=1",
    "trainer.enable_progress_bar=false",
]


def _final(summary: dict) -> dict:
    return {k: v for k, v in summary["metrics"].items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("whole")
    return run_main_ok(*RUN, run_dir=tmp / "run", cwd=tmp)


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "reglab.train", *RUN, *extra, f"hydra.run.dir={run_dir}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_a_checkpoint_and_rerun_resumes_to_the_same_result(
    tmp_path, data_dir, uninterrupted, sig
):
    run_dir = tmp_path / "run"
    # checkpoint every 10 steps; the signal lands after the first, mid-epoch (at once: on a
    # fast machine the 90 steps left take well under a second, issue 20)
    proc = _start(run_dir, "checkpoint.every_n_steps=10")
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    stopped = read_summary(run_dir)
    assert stopped["status"] == "interrupted", stopped
    assert 0 < stopped["metrics"]["steps"] < 100

    again = run_main(*RUN, "checkpoint.every_n_steps=10", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = read_summary(run_dir)
    assert resumed["status"] == "completed"
    assert resumed["resumed_from_step"] == stopped["metrics"]["steps"]
    assert _final(resumed) == _final(uninterrupted)


def test_kill_9_loses_only_the_work_since_the_last_checkpoint(tmp_path, data_dir, uninterrupted):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "checkpoint.every_n_steps=25")  # at epoch ends (result-neutral)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)  # written whole, then renamed
    proc.kill()  # at once: the run must not end first (75 steps left, issue 20)
    proc.wait(timeout=60)
    assert not (run_dir / "summary.json").exists()  # never read as finished
    again = run_main(*RUN, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = read_summary(run_dir)
    assert resumed["resumed_from_step"] in (25, 50, 75)  # an epoch-end checkpoint, mid-run
    assert _final(resumed) == _final(uninterrupted)
    assert not (run_dir / "checkpoints").exists()  # completed: checkpoints cleaned up
    assert not list(run_dir.rglob("*.ckpt"))  # none elsewhere (Lightning's own, in csv/)


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path, data_dir):
    """kill -9 leaves last.ckpt and no summary; the checkpoint's own record of its config
    tells a rerun with another lr not to resume it (the optimizer state holds the old lr)."""
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "checkpoint.every_n_steps=25")
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    proc.kill()
    proc.wait(timeout=60)
    assert not (run_dir / "summary.json").exists()
    again = run_main(*RUN, "optimizer.lr=0.02", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "optimizer.lr: 0.05 → 0.02" in again.stdout + again.stderr
    fresh = read_summary(run_dir)
    assert fresh["resumed_from_step"] is None and fresh["metrics"]["steps"] == 100
    (kept,) = (run_dir / ".superseded").iterdir()
    assert (kept / "checkpoints" / "last.ckpt").exists()


def test_completed_run_is_not_run_again(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    args = ["data=digits", "trainer.max_steps=10", f"hydra.run.dir={run_dir}"]
    assert run_main(*args, cwd=tmp_path).returncode == 0
    before = (run_dir / "summary.json").stat().st_mtime_ns
    again = run_main(*args, cwd=tmp_path)
    assert again.returncode == 0 and "already completed" in again.stdout + again.stderr
    assert (run_dir / "summary.json").stat().st_mtime_ns == before


def test_checkpoints_are_reglabs_own_and_kept_only_when_asked(tmp_path, data_dir):
    """checkpoint.keep=true keeps last.ckpt and best.ckpt in checkpoints/; Lightning's
    default checkpoint (an epoch=…-step=….ckpt under the logger's folder) is never made."""
    kept, plain = tmp_path / "kept", tmp_path / "plain"
    args = ["data=digits", "data.val_size=300", "trainer.max_epochs=2"]
    assert (
        run_main(*args, "checkpoint.keep=true", f"hydra.run.dir={kept}", cwd=tmp_path).returncode
        == 0
    )
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*.ckpt")) == [
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ]
    assert run_main(*args, f"hydra.run.dir={plain}", cwd=tmp_path).returncode == 0
    assert not list(plain.rglob("*.ckpt"))


def test_a_changed_config_reruns_and_keeps_the_earlier_run_aside(tmp_path, data_dir):
    """Same directory, other config (as after editing a scale file): the earlier result is
    not reused as if it were this config's; it moves to .superseded/ and the job reruns."""
    run_dir = tmp_path / "run"
    base = ["data=digits", f"hydra.run.dir={run_dir}"]
    assert run_main(*base, "trainer.max_steps=10", cwd=tmp_path).returncode == 0
    again = run_main(*base, "trainer.max_steps=12", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "trainer.max_steps: 10 → 12" in again.stdout + again.stderr
    assert read_summary(run_dir)["metrics"]["steps"] == 12
    (kept,) = (run_dir / ".superseded").iterdir()
    assert read_summary(kept)["metrics"]["steps"] == 10
    # Where and how it runs (threads, progress bar) is not a change: the job is skipped.
    before = (run_dir / "summary.json").read_bytes()
    same = run_main(*base, "trainer.max_steps=12", "threads=1", cwd=tmp_path)
    assert same.returncode == 0 and "already completed" in same.stdout + same.stderr
    assert (run_dir / "summary.json").read_bytes() == before


def test_divergence_is_recorded_and_exits_non_zero(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    result = run_main(
        "optimizer.lr=1e6",
        "trainer.max_steps=120",
        "data.train_size=5000",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("reglab: run diverged")
    summary = read_summary(run_dir)
    assert summary["status"] == "diverged" and "nan" in summary["error"]


def test_sweep_with_a_diverging_and_a_bad_point_runs_the_others(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    result = run_main(
        "-m",
        "optimizer.lr=1000000.0,0.1,-1",
        "data=digits",
        "trainer.max_steps=30",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    statuses = {
        p.parent.name: read_summary(p.parent)["status"] for p in sweep.glob("*/summary.json")
    }
    assert statuses == {
        "data=digits,optimizer.lr=1000000.0,trainer.max_steps=30": "diverged",
        "data=digits,optimizer.lr=0.1,trainer.max_steps=30": "completed",
        "data=digits,optimizer.lr=-1,trainer.max_steps=30": "failed",
    }
    bad = read_summary(sweep / "data=digits,optimizer.lr=-1,trainer.max_steps=30")
    assert "optimizer.lr=-1: must be a number > 0" in bad["error"]
    log = result.stdout + result.stderr
    assert "1 completed, 1 diverged, 1 failed;" in log and "MiB on disk" in log
    assert "job data=digits,optimizer.lr=-1,trainer.max_steps=30: failed: optimizer.lr=-1" in log
    assert "reglab: 2 jobs of the sweep did not complete" in log


def test_read_only_output_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_main(f"hydra.run.dir={blocker / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"reglab: error: hydra.run.dir={blocker / 'run'}: not writable; point REGLAB_LOG_DIR "
        "(or paths.log_dir) at a writable folder"
    )


def test_unknown_key_and_option_are_one_line(tmp_path):
    for args, message in [
        (["foo=1"], "reglab: error: foo: unknown key (a new key needs a leading +"),
        (["model=nosuch"], "reglab: error: model=nosuch: unknown option; allowed are cnn, mlp"),
    ]:
        result = run_main(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith(message)
