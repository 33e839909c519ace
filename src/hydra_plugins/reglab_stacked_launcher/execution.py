"""Running planned stacks: in this process, in spawned worker processes, or as SLURM jobs.

Every path ends in :func:`train_stack`, which calls the engine's ``run_stack`` and, when a
stack does not fit (``StackOutOfMemory``, a ``MemoryError``), retries it as two halves,
down to single members. A member that still fails has the failure in its own
``summary.json``, as every failed reglab job does. torch is imported only inside the
functions that train.
"""

from __future__ import annotations

import logging
import os
import subprocess
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reglab.locks import holder, skipped
from reglab.rerun import changed_settings
from reglab.summary import COMPLETED, failed_summary, read_summary

log = logging.getLogger(__name__)

#: One member's result: its summary (None if unknown) and the error that stopped its
#: stack, if the stack crashed (an exception other than a member's own failure).
Outcome = tuple[dict | None, BaseException | None]
RunStack = Callable[[list[Any]], list[dict]]


def is_out_of_memory(error: BaseException) -> bool:
    """The engine's ``StackOutOfMemory`` (a MemoryError), or torch's own CUDA OOM."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"


def train_stack(run_stack: RunStack, jobs: Sequence[Any]) -> list[Outcome]:
    """``run_stack(jobs)``, halved and retried while it runs out of memory."""
    jobs = list(jobs)
    try:
        summaries = run_stack(jobs)
    except Exception as error:
        if not is_out_of_memory(error):
            log.error(
                "a stack of %d members failed: %s: %s", len(jobs), type(error).__name__, error
            )
            return [crashed(job, error) for job in jobs]
        if len(jobs) == 1:
            message = f"out of memory even as a stack of one: {error}"
            return [(record_failure(jobs[0], message), None)]
        half = (len(jobs) + 1) // 2
        log.warning(
            "a stack of %d members ran out of memory (%s); retrying as stacks of %d and %d",
            len(jobs),
            error,
            half,
            len(jobs) - half,
        )
        _release_memory()
        return train_stack(run_stack, jobs[:half]) + train_stack(run_stack, jobs[half:])
    if len(summaries) != len(jobs):
        error = RuntimeError(f"run_stack returned {len(summaries)} summaries for {len(jobs)} jobs")
        return [crashed(job, error) for job in jobs]
    return [(summary, None) for summary in summaries]


def crashed(job: Any, error: BaseException) -> Outcome:
    """A member of a stack that crashed: a completed run of its config already on disk
    stands, a job another process trains is left to it, otherwise the crash goes into its
    summary."""
    owner = holder(Path(job.out_dir))
    if owner is not None:
        return skipped(Path(job.out_dir), owner, job.overrides), None
    done = read_summary(Path(job.out_dir))
    if (
        done
        and done.get("status") == COMPLETED
        and not changed_settings(done.get("config"), _resolved(job))
    ):
        return done, None
    return record_failure(job, f"{type(error).__name__}: {error}"), error


def record_failure(job: Any, message: str) -> dict:
    """The job's failure as its summary (:func:`reglab.summary.failed_summary`)."""
    return failed_summary(job.out_dir, message, job.overrides, job.choices, _resolved(job))


def _resolved(job: Any) -> dict:
    from omegaconf import OmegaConf

    cfg = job.cfg
    return OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)


def _release_memory() -> None:
    """Give cached CUDA blocks back before a retry (only if torch is already loaded)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def portable(outcomes: list[Outcome]) -> list[Outcome]:
    """Outcomes that survive pickling: errors as RuntimeErrors carrying the traceback."""
    out = []
    for summary, error in outcomes:
        if error is not None:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            error = RuntimeError(f"stack failed in a worker:\n{text}")
        out.append((summary, error))
    return out


# -- worker processes ---------------------------------------------------------------------


def init_worker(threads: int | None) -> None:
    """A spawned worker: its torch threads, warnings and errors on stdout (each member's
    own lines go to its train.log), no progress bars."""
    from reglab.progress import no_bar, quiet_job_console

    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    )
    quiet_job_console()
    no_bar()
    if threads:
        import torch

        torch.set_num_threads(threads)


def work(run_stack: RunStack, jobs: list[Any]) -> list[Outcome]:
    """One stack in a worker process."""
    return portable(train_stack(run_stack, jobs))


class StackTask:
    """The callable submitit runs as one SLURM job: one stack.

    On SIGUSR2 (time limit near, or pre-emption) the engine checkpoints every member and
    hands over to submitit, which calls :meth:`checkpoint` and requeues the same stack;
    the requeued job resumes each member from its checkpoint (as hydra-submitit-launcher
    does for single jobs).
    """

    def __init__(self, run_stack: RunStack, threads: int | None) -> None:
        self.run_stack = run_stack
        self.threads = threads

    def __call__(self, jobs: list[Any]) -> list[Outcome]:
        init_worker(self.threads)
        return work(self.run_stack, jobs)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


# -- the memory a stack may use -----------------------------------------------------------


def on_gpu(configs: Sequence[dict]) -> bool:
    accelerators = {str((c.get("trainer") or {}).get("accelerator")) for c in configs}
    return bool(accelerators & {"gpu", "cuda"})


def free_gpu_bytes() -> int | None:
    """Free memory of the first visible GPU: nvidia-smi, else torch; None if unknown."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        free = dict(line.replace(" ", "").split(",") for line in out.splitlines() if "," in line)
        if visible in free:
            return int(free[visible]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    try:
        import torch

        return int(torch.cuda.mem_get_info()[0]) if torch.cuda.is_available() else None
    except Exception:
        return None


def ram_bytes() -> int:
    """Physical memory, or the cgroup's limit if lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(path).read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, int(limit))
    return total


def default_budget(configs: Sequence[dict], n_procs: int) -> tuple[int | None, str]:
    """Bytes each of ``n_procs`` concurrent stacks may use, and where: 80 % of the free
    GPU memory or 25 % of the RAM, shared evenly."""
    n_procs = max(1, n_procs)
    if on_gpu(configs):
        free = free_gpu_bytes()
        return (None if free is None else int(0.8 * free) // n_procs), "gpu"
    return int(0.25 * ram_bytes()) // n_procs, "cpu"
