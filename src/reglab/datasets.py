"""The facts of each data set reglab knows, in one table (:data:`DATASETS`).

Validation, the stacked launcher's memory estimates (:mod:`reglab.stacking`), the data
sources (:mod:`reglab.data.sources`, which check what they load against it), the model's
input shape and the report all read them here. Imports nothing: validation and refusals
run before torch is imported. tests/unit/test_data.py checks the table against the real files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataSet:
    """One data set as reglab loads it."""

    title: str  # its name in the report
    train_size: int  # training images, before the hold-out (data.val_size)
    test_size: int
    shape: tuple[int, int, int]  # an image's (channels, height, width), before data.crop
    num_classes: int
    files: tuple[str, ...] = ()  # what torchvision reads under data.root (none: a library's)


_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte")  # fmt: skip
_CIFAR = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def _files(folder: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{folder}/{name}" for name in names)


#: ``data.name`` → its facts.
DATASETS: dict[str, DataSet] = {
    "mnist": DataSet("MNIST", 60_000, 10_000, (1, 28, 28), 10, _files("MNIST/raw", _IDX)),
    "fashion_mnist": DataSet(
        "Fashion-MNIST", 60_000, 10_000, (1, 28, 28), 10, _files("FashionMNIST/raw", _IDX)
    ),
    "cifar10": DataSet(
        "CIFAR-10", 50_000, 10_000, (3, 32, 32), 10, _files("cifar-10-batches-py", _CIFAR)
    ),
    # scikit-learn's 1,797 8x8 digits, the last 20 % as the test split
    "digits": DataSet("scikit-learn digits (8x8)", 1_437, 360, (1, 8, 8), 10),
}
NAMES = tuple(DATASETS)


def cropped(shape: tuple[int, int, int], crop: int | None) -> tuple[int, int, int]:
    """An image's (C, H, W) after a centre crop to ``crop`` pixels (None: none)."""
    c, h, w = shape
    return (c, min(h, int(crop)), min(w, int(crop))) if crop else (c, h, w)


def input_shape(data: Any) -> tuple[tuple[int, int, int], int]:
    """The network's input shape (C, H, W) after ``data.crop``, and the classes, of a
    config's ``data`` node."""
    facts = DATASETS[data.name]
    return cropped(facts.shape, data.get("crop")), facts.num_classes


def data_size_error(
    name: str, n_train: int, side: int, crop: int | None, val_size: int, train_size: int | None
) -> str | None:
    """Why ``data.crop``, ``data.val_size`` and ``data.train_size`` do not fit a data set
    of ``n_train`` training images of ``side`` pixels, or None. One rule for both checks:
    the config's, against :data:`DATASETS`, and the loaded data's."""
    if crop is not None and crop > side:
        return f"data.crop={crop}: must be <= {side} (image size)"
    if val_size > n_train - 1:
        return f"data.val_size={val_size}: must be < {n_train} ({name} train size)"
    if train_size is not None and not 0 < train_size <= n_train - val_size:
        return (
            f"data.train_size={train_size}: must be in [1, {n_train - val_size}] "
            f"({name} minus data.val_size={val_size})"
        )
    return None
