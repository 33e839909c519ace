"""Load whole data sets as tensors: uint8 images (N, C, H, W) and int64 labels (N,).

torchvision reads the files (and downloads them on machines with internet); reglab only
checks them and hands the arrays over. scikit-learn's 8x8 ``digits`` ships with the
library, so it works offline anywhere and keeps tests tiny.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from reglab.datasets import DATASETS


class DataError(RuntimeError):
    """Data missing, corrupted or unreadable; the message says what to do."""


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, C, H, W) in [0, 255]; float32 on that scale if synthetic
    labels: torch.Tensor  # int64 (N,)
    # Row i is row rows[i] of the data set's train and test images concatenated, when the
    # images are the data set's own (not a pixel corruption's): stacked members then share
    # one copy of the images and keep only these indices (reglab.data.stack).
    rows: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> Split:
        rows = None if self.rows is None else self.rows[index]
        return Split(self.images[index], self.labels[index], rows)

    def with_labels(self, labels: torch.Tensor) -> Split:
        return Split(self.images, labels, self.rows)


@dataclass
class RawData:
    train: Split
    test: Split
    num_classes: int


# md5 of the four uncompressed IDX files (torchvision stores md5s of the .gz archives only).
MNIST_RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def check_mnist_files(raw_dir: Path) -> None:
    """Compare the raw MNIST files with their known md5s; a bad file is named."""
    for name, expected in MNIST_RAW_MD5.items():
        path = raw_dir / name
        if path.exists() and _md5(path) != expected:
            raise DataError(
                f"data.root: {path} is corrupted or truncated (md5 mismatch); delete it and "
                "rerun to download it again, or copy the original file there"
            )


def _torchvision(cls_name: str, root: Path, download: bool):
    """Both splits of a torchvision data set, downloading only when allowed and needed."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        return cls(root, train=True, download=False), cls(root, train=False, download=False)
    except RuntimeError as missing:
        if not download:
            raise DataError(
                f"data.root={root}: {cls_name} not found there ({missing}); set data.download=true "
                "or put the files there (env REGLAB_DATA_DIR sets the root)"
            ) from None
    try:
        return cls(root, train=True, download=True), cls(root, train=False, download=True)
    except Exception as failure:  # no network, HTTP errors, disk full, …
        raise DataError(
            f"data.root={root}: {cls_name} not found there and the download failed "
            f"({type(failure).__name__}: {str(failure).splitlines()[0] if str(failure) else ''}); "
            "copy the files there or point REGLAB_DATA_DIR at a folder that has them"
        ) from None


def _idx(cls_name: str, root: Path, download: bool) -> tuple[Split, Split]:
    train, test = _torchvision(cls_name, root, download)
    return (
        Split(train.data.unsqueeze(1).contiguous(), train.targets.long()),
        Split(test.data.unsqueeze(1).contiguous(), test.targets.long()),
    )


def _mnist(root: Path, download: bool) -> tuple[Split, Split]:
    check_mnist_files(root / "MNIST" / "raw")
    return _idx("MNIST", root, download)


def _fashion_mnist(root: Path, download: bool) -> tuple[Split, Split]:
    return _idx("FashionMNIST", root, download)


def _cifar10(root: Path, download: bool) -> tuple[Split, Split]:
    train, test = _torchvision("CIFAR10", root, download)

    def split(ds) -> Split:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return Split(images, torch.as_tensor(ds.targets, dtype=torch.long))

    return split(train), split(test)


def _digits(root: Path, download: bool) -> tuple[Split, Split]:
    """scikit-learn's 1,797 8x8 digits (values 0–16), the last 20 % as the test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images * (255.0 / 16.0)).round().to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).long()
    n_train = int(0.8 * len(labels))
    return Split(images[:n_train], labels[:n_train]), Split(images[n_train:], labels[n_train:])


#: ``data.name`` → its loader: (root, download) → (train, test); one per data set of
#: :data:`reglab.datasets.DATASETS`, whose facts the loaded data are checked against.
LOADERS = {
    "mnist": _mnist,
    "fashion_mnist": _fashion_mnist,
    "cifar10": _cifar10,
    "digits": _digits,
}


def load(name: str, root: str | Path, download: bool = True) -> RawData:
    """Both splits of data set ``name`` as in-memory tensors, rows numbered train then test."""
    if name not in LOADERS:
        raise DataError(f"data.name={name!r}: allowed are {', '.join(LOADERS)}")
    train, test = LOADERS[name](Path(root).expanduser(), download)
    raw = RawData(train, test, num_classes=DATASETS[name].num_classes)
    check_facts(name, raw)
    raw.train.rows = torch.arange(len(train))
    raw.test.rows = torch.arange(len(train), len(train) + len(test))
    return raw


def check_facts(name: str, raw: RawData) -> None:
    """The loaded images have the data set's shape and the labels its classes
    (:data:`reglab.datasets.DATASETS`)."""
    facts = DATASETS[name]
    for split, data in (("train", raw.train), ("test", raw.test)):
        shape = tuple(data.images.shape[1:])
        if shape != facts.shape:
            raise DataError(f"data.name={name}: its {split} images are {shape}, not {facts.shape}")
        labels = data.labels
        if len(labels) and not (int(labels.min()) >= 0 and int(labels.max()) < raw.num_classes):
            raise DataError(
                f"data.name={name}: its {split} labels are not in [0, {raw.num_classes})"
            )
