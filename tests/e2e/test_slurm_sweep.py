"""A sweep through ``launcher=slurm`` on a REAL one-node SLURM cluster (scripts/slurm_local.sh).

The path of ``make sweep LAUNCHER=slurm``: hydra-submitit-launcher submits the jobs as an
array with sbatch, each runs the reglab job under srun and writes its summary into the
sweep directory; the sweep command waits for both. Jobs are tiny (digits, 20 updates):
the machine may have only 2 CPUs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has no __init__.py
from conftest import read_summary, run_cli
from slurm_fixture import slurm_cluster_fixture  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slurm


def test_two_job_sweep_through_slurm(slurm_cluster, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "experiment=penalties",
        "launcher=slurm",
        f"hydra.launcher.partition={slurm_cluster.partition}",
        "hydra.launcher.timeout_min=5",
        "hydra.launcher.mem_gb=1",
        "launcher.cpus_per_task=1",
        "data=digits",
        "data.train_size=null",
        "model.hidden=[32]",
        "regularizer=l2",
        "regularizer.lam=1e-4",
        "trainer.max_steps=20",
        "trainer.val_check_interval=10",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert len(jobs) == 2 and all(f"seed={i}," in j.name for i, j in enumerate(jobs))
    summaries = [read_summary(j) for j in jobs]
    assert all(s["status"] == "completed" and s["metrics"]["steps"] == 20 for s in summaries)
    assert {s["seed"] for s in summaries} == {0, 1}
    assert all(s["config"]["launcher"]["name"] == "slurm" for s in summaries)
    assert all(s["config"]["threads"] == 1 for s in summaries)
    # submitit's own files: one array job of two tasks, each with its SLURM log.
    logs = list((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2, logs
    # One line per finished job, read from the job folders while the sweep waits for SLURM.
    assert {x[:4] for x in _job_lines(result.stdout)} == {"1/2 ", "2/2 "}, result.stdout


def test_stacked_sweep_through_slurm_one_job_per_stack(slurm_cluster, tmp_path):
    """launcher=stacked_slurm: the sweep's two compatible jobs are one stack, submitted as
    one SLURM job; each member still writes its own job folder and summary."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        "-m",
        "launcher=stacked_slurm",
        f"hydra.launcher.partition={slurm_cluster.partition}",
        "hydra.launcher.timeout_min=5",
        "hydra.launcher.mem_gb=1",
        "launcher.cpus_per_task=1",
        "data=digits",
        "model.hidden=[32]",
        "trainer.max_steps=20",
        "trainer.val_check_interval=10",
        "trainer.check_val_every_n_epoch=null",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summaries = [read_summary(p.parent) for p in sorted(sweep.glob("*/summary.json"))]
    assert [s["seed"] for s in summaries] == [0, 1]
    assert all(s["status"] == "completed" and s["metrics"]["steps"] == 20 for s in summaries)
    assert {s["stack"]["id"] for s in summaries} == {summaries[0]["stack"]["id"]}
    assert summaries[0]["stack"]["size"] == 2
    logs = list((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 1, logs  # one SLURM job for the stack
    assert {x[:4] for x in _job_lines(result.stdout)} == {"1/2 ", "2/2 "}, result.stdout


def _job_lines(out: str) -> list[str]:
    """The sweep's k/N lines (reglab.progress)."""
    return [line.split(" - ", 1)[1] for line in out.splitlines() if "/2 completed, test " in line]
