"""OmegaConf resolvers the configs use, and :func:`compose`, which registers them first.

``import reglab`` registers nothing: whatever composes or resolves a config registers
them (:func:`register`, idempotent): ``reglab-train`` (:mod:`reglab.train`, also in the
job processes that unpickle its task), the stacked launcher, the engine's ``run_stack``,
the notebook helpers ``from_configs`` and :func:`compose`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

#: The configs, shipped inside the package (src/reglab/conf links to the top-level conf/).
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")


def updates_for(
    size: int | None, batch_size: int, epochs: float, at_least: int, at_most: int | None = None
) -> int:
    """⌈epochs · size / batch_size⌉ updates, at least ``at_least`` and at most ``at_most``.

    ``${reglab.updates_for:${data.train_size},${data.batch_size},50,3000,7500}`` trains every
    training-set size of a sweep for 50 epochs, but never fewer than 3,000 updates (small
    sets) nor more than 7,500 (large sets, where the time budget binds).
    """
    if size is None:
        raise ValueError("reglab.updates_for needs a training-set size; data.train_size is null")
    updates = max(int(at_least), math.ceil(float(epochs) * int(size) / int(batch_size)))
    return updates if at_most is None else min(int(at_most), updates)


def job_dir(task, excluded) -> str:
    """``hydra.sweep.subdir``: the job's folder name from its overrides (``task``), the
    result-neutral ``excluded`` keys and the keys below them left out
    (:func:`reglab.jobs.job_dirname`; ``+meta.note=x`` names no folder)."""
    from reglab.jobs import job_dirname

    return job_dirname(list(task or []), list(excluded or []))


def neutral_keys() -> list[str]:
    """``hydra.job.config.override_dirname.exclude_keys``: :data:`reglab.rerun.HOW_KEYS`,
    the one list of result-neutral keys."""
    from reglab.rerun import HOW_KEYS

    return list(HOW_KEYS)


RESOLVERS = {
    "reglab.updates_for": updates_for,
    "reglab.job_dir": job_dir,
    "reglab.neutral_keys": neutral_keys,
}


def register() -> None:
    """Register :data:`RESOLVERS` with OmegaConf (those not registered yet)."""
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


def compose(
    overrides: Sequence[str] = (), hydra: bool = False, config_dir: str = CONFIG_DIR
) -> DictConfig:
    """``config.yaml`` (of ``config_dir``) composed with ``overrides`` as ``reglab-train``
    composes it (``hydra``: with Hydra's own node), the resolvers registered."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=hydra)
