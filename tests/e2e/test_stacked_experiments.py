"""Every experiment of conf/experiment runs with launcher=stacked: its quick sweep, planned
into stacks and trained for a few updates (paper scale is planned in test_stacking.py).

``reglab-train`` runs in this process (inprocess.py). One experiment keeps the default
``launcher.n_procs`` (one process per core: its stacks train in spawned worker processes,
each importing torch anew); the others train their stacks here (``n_procs=1``)."""

from __future__ import annotations

import pytest
from conftest import CONF
from inprocess import run_main

from reglab import jobs
from reglab.summary import read_summary

pytestmark = pytest.mark.slow

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
# CI time: one seed wherever another stackable axis still puts two jobs in one stack.
SMALLER = {
    "batchnorm": [],  # model.batchnorm is not stackable: the seeds make its stacks
    "dropout_rate_fixed_pn": ["fixed_pn.p=p0.5,p1.0"],  # widths differ with p: seeds stack
}
#: The experiment whose stacks train in worker processes, as on a user's CPU machine.
WORKERS = "batchnorm"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_the_quick_sweep_trains_in_stacks(tmp_path, data_dir, experiment):
    sweep = tmp_path / "sweep"
    result = run_main(
        "-m",
        f"experiment={experiment}",
        "scale=quick",
        "launcher=stacked",
        "trainer.max_steps=3",
        "probe_size=100",
        "data.val_size=1000",  # 3 updates: the evaluations are most of the time
        *SMALLER.get(experiment, ["scale.seeds=0"]),
        *([] if experiment == WORKERS else ["launcher.n_procs=1", "launcher.threads_per_proc=1"]),
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [read_summary(job) for job in jobs.job_dirs(sweep)]
    assert summaries and all(s["status"] == "completed" for s in summaries)
    assert all(s["metrics"]["steps"] == 3 for s in summaries)
    sizes = [s["stack"]["size"] for s in summaries]
    assert max(sizes) > 1, f"{experiment}: no two jobs shared a stack"
    stacks = {s["stack"]["id"] for s in summaries}
    print(f"{experiment}: {len(summaries)} jobs in {len(stacks)} stacks")
