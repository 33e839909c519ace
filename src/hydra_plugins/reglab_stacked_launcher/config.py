"""The launchers' configs in Hydra's ConfigStore: ``hydra/launcher/reglab_stacked`` and
``hydra/launcher/reglab_stacked_slurm`` (reglab's conf/launcher/stacked*.yaml pick them).

No ``from __future__ import annotations`` here: Hydra's plugin scan executes this module
before putting it in sys.modules, and dataclasses then cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

_PACKAGE = "hydra_plugins.reglab_stacked_launcher"


@dataclass
class StackedLauncherConf:
    """Stacks run in this process (n_procs=1) or in n_procs spawned worker processes."""

    _target_: str = f"{_PACKAGE}.stacked_launcher.StackedLauncher"
    max_members: int = 64  # most jobs trained together as one stack
    # stacks running at the same time, each in its own process (null: one per core on a
    # CPU, one on a GPU); the plan makes at least that many stacks
    n_procs: int | None = None
    # Memory each stack may use on its training device, GB. null: 80 % of the free GPU
    # memory (trainer on a GPU) or 25 % of the RAM, shared among the n_procs processes.
    memory_gb: float | None = None
    dry_run: bool = False  # print the plan (one line per stack) and train nothing
    threads_per_proc: int | None = None  # torch threads per process (null: cores / n_procs)


@dataclass
class StackedSlurmLauncherConf(StackedLauncherConf):
    """One SLURM job per stack, submitted as an array by submitit. ``n_procs`` is unused.
    ``memory_gb`` null: no budget on a GPU node (a stack that runs out is halved inside its
    job), half of ``mem_gb`` on a CPU node."""

    _target_: str = f"{_PACKAGE}.slurm_launcher.StackedSlurmLauncher"
    submitit_folder: str = "${hydra.sweep.dir}/.submitit/%j"
    timeout_min: int = 720  # wall-clock limit of each job (one stack)
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    tasks_per_node: int = 1
    mem_gb: int | None = None
    nodes: int = 1
    name: str = "${hydra.job.name}"
    stderr_to_stdout: bool = False
    partition: str | None = None
    qos: str | None = None
    comment: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    gres: str | None = None
    cpus_per_gpu: int | None = None
    gpus_per_task: int | None = None
    mem_per_gpu: str | None = None
    mem_per_cpu: str | None = None
    account: str | None = None
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit: checkpoint, requeue
    max_num_timeout: int = 3  # requeues after a time-out or pre-emption (members resume)
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    array_parallelism: int = 64  # stacks running at the same time
    setup: list[str] | None = None  # shell lines run in sbatch before srun


#: The keys of the slurm config that are this launcher's own, not submitit's.
STACKING_KEYS = frozenset(("max_members", "n_procs", "memory_gb", "dry_run", "threads_per_proc"))
#: submitit's parameters shared by all its executors (others get the executor's prefix).
SUBMITIT_GENERIC_KEYS = frozenset(
    (
        "timeout_min",
        "cpus_per_task",
        "gpus_per_node",
        "tasks_per_node",
        "mem_gb",
        "nodes",
        "name",
        "stderr_to_stdout",
    )
)

ConfigStore.instance().store(
    group="hydra/launcher", name="reglab_stacked", node=StackedLauncherConf, provider="reglab"
)
ConfigStore.instance().store(
    group="hydra/launcher",
    name="reglab_stacked_slurm",
    node=StackedSlurmLauncherConf,
    provider="reglab",
)
