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


def register() -> None:
    if not OmegaConf.has_resolver("reglab.updates_for"):
        OmegaConf.register_new_resolver("reglab.updates_for", updates_for)
