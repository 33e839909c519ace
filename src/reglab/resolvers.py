"""OmegaConf resolvers the configs use; registered when ``reglab`` is imported."""

from __future__ import annotations

import math

from omegaconf import OmegaConf


def updates_for(size: int | None, batch_size: int, epochs: float, at_least: int) -> int:
    """max(at_least, ⌈epochs · size / batch_size⌉): a budget in epochs with a floor of updates.

    ``${reglab.updates_for:${data.train_size},${data.batch_size},50,3000}`` trains every
    training-set size of a sweep for at least 50 epochs and at least 3,000 updates.
    """
    if size is None:
        raise ValueError("reglab.updates_for needs a training-set size; data.train_size is null")
    return max(int(at_least), math.ceil(float(epochs) * int(size) / int(batch_size)))


def register() -> None:
    if not OmegaConf.has_resolver("reglab.updates_for"):
        OmegaConf.register_new_resolver("reglab.updates_for", updates_for)
