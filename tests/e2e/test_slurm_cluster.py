"""submitit against a REAL one-node SLURM cluster (scripts/slurm_local.sh), not a mock.

This is the path `LAUNCHER=slurm` sweeps take (hydra-submitit-launcher uses
``submitit_slurm``): sbatch, srun inside the job, result pickles, and state
polling through `sacct` (answered by the script's stand-in, since the local
cluster has no accounting). Jobs are tiny: the machine may have only 2 CPUs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ has no __init__.py
import submitit  # a project dependency: missing it must fail, not skip
from slurm_fixture import SlurmCluster, slurm_cluster_fixture  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slurm

JOB_TIMEOUT_S = 120


def _executor(folder: Path, cluster: SlurmCluster):
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    assert executor.cluster == "slurm"
    executor.update_parameters(
        slurm_partition=cluster.partition, timeout_min=5, cpus_per_task=1, mem_gb=1
    )
    return executor


def _wait(jobs, timeout: float = JOB_TIMEOUT_S) -> None:
    """Bounded wait (job.result() alone would wait forever), cancelling on timeout."""
    deadline = time.monotonic() + timeout
    while not all(job.done() for job in jobs):
        if time.monotonic() > deadline:
            for job in jobs:
                job.cancel(check=False)
            logs = "\n".join(f"{job.job_id}: {job.state}\n{job.stderr()}" for job in jobs)
            pytest.fail(f"SLURM jobs not done after {timeout:.0f}s:\n{logs}")
        time.sleep(0.5)


def test_submitit_job_runs_under_slurm(slurm_cluster, tmp_path):
    # Nested functions are pickled by value, so the job needs no access to tests/.
    def job_info(x):
        import os
        import socket

        return (
            x * 2,
            os.environ["SLURM_JOB_ID"],
            os.environ["SLURM_JOB_PARTITION"],
            socket.gethostname(),
        )

    job = _executor(tmp_path, slurm_cluster).submit(job_info, 21)
    _wait([job])
    doubled, job_id, partition, _host = job.result()
    assert doubled == 42
    assert job_id == job.job_id
    assert partition == slurm_cluster.partition


def test_submitit_array_job(slurm_cluster, tmp_path):
    def array_task(x):
        import os

        return x + 1, os.environ["SLURM_ARRAY_JOB_ID"], os.environ["SLURM_ARRAY_TASK_ID"]

    jobs = _executor(tmp_path, slurm_cluster).map_array(array_task, [10, 20])
    assert len(jobs) == 2
    _wait(jobs)
    results = [job.result() for job in jobs]
    assert [r[0] for r in results] == [11, 21]
    array_ids = {r[1] for r in results}
    assert len(array_ids) == 1, results  # one array, two tasks
    assert sorted(int(r[2]) for r in results) == [0, 1]
    assert [job.job_id for job in jobs] == [f"{r[1]}_{r[2]}" for r in results]


def test_hard_killed_job_is_reported_not_awaited_forever(slurm_cluster, tmp_path):
    """A job that dies without a result pickle must end as FAILED, not hang.

    Without accounting the real `sacct` fails and submitit keeps such a job
    UNKNOWN (= not done) forever; the script's sacct stand-in reports it.
    """

    def die():
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)

    job = _executor(tmp_path, slurm_cluster).submit(die)
    _wait([job])  # bounded: a job that died must end, however loaded the machine
    assert job.state == "FAILED"
    job._results_timeout_s = 0  # don't wait 15 s for a pickle that can't come
    with pytest.raises(submitit.core.utils.UncompletedJobError):
        job.result()
