"""Data: whole splits as tensors, Zhang et al.'s corruptions, seeded batches."""

from reglab.data.corruption import (
    Corruption,
    GaussianPixels,
    PartialLabels,
    RandomPixels,
    ShuffledPixels,
)
from reglab.data.datamodule import TensorDataModule
from reglab.data.sources import DataError

__all__ = [
    "Corruption",
    "DataError",
    "GaussianPixels",
    "PartialLabels",
    "RandomPixels",
    "ShuffledPixels",
    "TensorDataModule",
]
