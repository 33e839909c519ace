"""OmegaConf resolvers the configs use; registered when ``reglab`` is imported."""

from __future__ import annotations

import math

from omegaconf import OmegaConf


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


def register() -> None:
    for name, function in (("reglab.updates_for", updates_for), ("reglab.job_dir", job_dir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
