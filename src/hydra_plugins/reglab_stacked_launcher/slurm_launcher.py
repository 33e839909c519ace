"""``hydra/launcher=reglab_stacked_slurm``: the stacked launcher's stacks as SLURM jobs,
submitted by submitit as one array (``conf/launcher/stacked_slurm.yaml``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from hydra_plugins.reglab_stacked_launcher import execution
from hydra_plugins.reglab_stacked_launcher.config import SUBMITIT_GENERIC_KEYS
from hydra_plugins.reglab_stacked_launcher.stacked_launcher import Member, StackedLauncher

log = logging.getLogger(__name__)


class StackedSlurmLauncher(StackedLauncher):
    """``hydra/launcher=reglab_stacked_slurm``: one SLURM job per stack, via submitit."""

    _EXECUTOR = "slurm"
    poll_s = 10.0  # seconds between looks at the jobs' states while waiting

    def procs(self, configs: Sequence[dict]) -> int:
        return 1  # each stack is a SLURM job of its own: no process split

    def budget(self, configs: Sequence[dict]) -> tuple[int | None, str]:
        if self.memory_gb is not None or not configs:
            return super().budget(configs)
        if execution.on_gpu(configs):
            return None, "gpu"  # the node's GPU is not known here: halve on out-of-memory
        mem_gb = self.params.get("mem_gb")
        return (int(mem_gb * 2**30) // 2 if mem_gb else None), "cpu"

    def execute(
        self, stacks: list[list[Member]], run_stack: execution.RunStack
    ) -> dict[int, execution.Outcome]:
        import submitit

        params = dict(self.params)
        folder = params.pop("submitit_folder")
        timeouts = params.pop("max_num_timeout", 0)
        executor = submitit.AutoExecutor(
            folder=folder,
            cluster=self._EXECUTOR,
            **{f"{ex}_max_num_timeout": timeouts for ex in {"slurm", self._EXECUTOR}},
        )
        executor.update_parameters(
            **{k if k in SUBMITIT_GENERIC_KEYS else f"slurm_{k}": v for k, v in params.items()}
        )
        threads = self.threads_per_proc or params.get("cpus_per_task")
        task = execution.StackTask(run_stack, threads)
        with executor.batch():
            jobs = [executor.submit(task, [m.job for m in stack]) for stack in stacks]
        for stack in stacks:
            self.job_start(stack)
        log.info(
            "submitted %d stacks as %s jobs; submitit folder %s", len(jobs), self._EXECUTOR, folder
        )
        self.wait(jobs)
        outcomes: dict[int, execution.Outcome] = {}
        for stack, job in zip(stacks, jobs, strict=True):
            outcomes |= self.collect(stack, lambda job=job: job.results()[0])
        return outcomes

    def wait(self, jobs: list[Any]) -> None:
        """Until every job has ended; one log line each time the count of ended ones grows."""
        last = 0
        while (done := sum(job.done() for job in jobs)) < len(jobs):
            if done > last:
                log.info("stacks done: %d/%d", done, len(jobs))
                last = done
            time.sleep(self.poll_s)
        log.info("stacks done: %d/%d", len(jobs), len(jobs))
