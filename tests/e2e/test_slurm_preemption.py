"""SLURM pre-emption through submitit's requeue loses nothing (real one-node cluster).

submitit asks SLURM for a SIGUSR2 warning before a job's time limit; pre-emption sends
the same. reglab then stops after the current batch, saves ``last.ckpt`` and hands over
to submitit, which requeues the job; the requeued job resumes from the checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has no __init__.py
from conftest import read_summary
from slurm_fixture import slurm_cluster_fixture  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _squeue(*fields: str) -> list[list[str]]:
    out = subprocess.run(
        ["squeue", "-h", "-o", " ".join(fields)], capture_output=True, text=True, check=True
    ).stdout
    return [line.split() for line in out.splitlines()]


def _wait(predicate, what: str, proc: subprocess.Popen, timeout: float = 240):
    deadline = time.time() + timeout
    while not (found := predicate()):
        assert proc.poll() is None, f"sweep ended before {what}: {proc.communicate()}"
        assert time.time() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.2)
    return found


def test_usr2_requeues_and_the_job_resumes(slurm_cluster, tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reglab.train",
            "-m",
            "launcher=slurm",
            f"hydra.launcher.partition={slurm_cluster.partition}",
            "hydra.launcher.timeout_min=10",
            "hydra.launcher.mem_gb=1",
            "launcher.cpus_per_task=1",
            "data.train_size=5000",
            "trainer.max_epochs=6",
            "checkpoint.every_n_steps=10",
            "seed=0",
            "trainer.enable_progress_bar=false",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait(lambda: list(sweep.glob("*/checkpoints/last.ckpt")), "checkpoint", proc)
        job_id = _wait(
            lambda: [i for i, state in _squeue("%i", "%T") if state == "RUNNING"],
            "running job",
            proc,
        )[0]
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
        # SLURM holds a requeued job ~2 min (BeginTime); let it start now instead, but only
        # 2 s after the requeue: slurmd refuses a launch whose credential dates from the
        # second in which the requeue revoked the job's credential ("Killing non-startable
        # batch JobId=45: Job credential revoked" in slurmctld.log, CI on 2026-12-06), and
        # the job fails.
        _wait(
            lambda: [r for r in _squeue("%i", "%T") if r == [job_id, "PENDING"]],
            "requeued job",
            proc,
        )
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    (job,) = [p.parent for p in sweep.glob("*/summary.json")]
    summary = read_summary(job)
    assert summary["status"] == "completed"
    assert 0 < summary["resumed_from_step"] < 300 == summary["metrics"]["steps"]
    logs = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.out"))
    assert "Caught signal SIGUSR2" in logs and "Requeued job" in logs
