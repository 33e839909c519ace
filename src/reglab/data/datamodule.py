"""The data module: whole splits as tensors, seeded hold-out, subsets and corruption."""

from __future__ import annotations

from typing import Literal

import torch

from reglab.data import sources
from reglab.data.batches import EpochPermutation, TensorBatches
from reglab.data.corruption import Corruption
from reglab.data.sources import RawData, Split
from reglab.datasets import data_size_error
from reglab.seeding import Stream, generator

Normalization = Literal["standardize", "unit", "per_image"]


def holdout(split: Split, size: int, gen: torch.Generator) -> tuple[Split, Split]:
    """A seeded random hold-out of ``size`` examples: (rest, held_out)."""
    perm = torch.randperm(len(split), generator=gen)
    return split.take(perm[size:]), split.take(perm[:size])


def subset(split: Split, size: int, balanced: bool, num_classes: int, gen) -> Split:
    """A seeded random subset of ``size`` examples, class-balanced if asked."""
    perm = torch.randperm(len(split), generator=gen)
    if not balanced:
        return split.take(perm[:size])
    labels = split.labels[perm]
    per_class = [perm[labels == k] for k in range(num_classes)]
    quota = [size // num_classes + (k < size % num_classes) for k in range(num_classes)]
    chosen = torch.cat([idx[:q] for idx, q in zip(per_class, quota, strict=True)])
    return split.take(chosen[torch.randperm(len(chosen), generator=gen)])


def centre_crop(split: Split, size: int) -> Split:
    """The central ``size`` x ``size`` pixels of every image (Zhang et al. 2017, App. A)."""
    height, width = split.images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    images = split.images[..., top : top + size, left : left + size].contiguous()
    return Split(images, split.labels, split.rows)


def binarize(split: Split) -> Split:
    """Pixels at half intensity or above become white (255), the rest black (0).

    Ioffe & Szegedy 2015, §4.1 feed "a 28x28 binary image as input"; MNIST ships grey levels.
    """
    white = torch.full((), 255, dtype=split.images.dtype)
    return Split(torch.where(split.images >= 127.5, white, 0), split.labels, split.rows)


class TensorDataModule:
    """Train / validation / test splits held as whole tensors.

    Everything random is drawn here, once, from the run's seed: the validation hold-out,
    the training subset (``train_size``) and the corruption. ``load()`` does all of it
    before the stack is built, so bad data fails before any training. A stack's members
    share one image tensor (:class:`reglab.data.stack.StackData`); a member's batch order
    is its own ``EpochPermutation`` there.
    """

    def __init__(
        self,
        name: str,
        root: str,
        download: bool = True,
        val_size: int = 10_000,
        crop: int | None = None,
        binarize: bool = False,
        train_size: int | None = None,
        balanced: bool = False,
        batch_size: int = 100,
        eval_batch_size: int = 1000,
        normalize: Normalization = "standardize",
        on_device: bool = True,
        eval_train_set: bool = False,
        corruption: Corruption | None = None,
        seed: int = 0,
    ) -> None:
        self.name = name
        self.root = root
        self.download = download
        self.val_size = val_size
        self.crop = crop
        self.binarize = binarize
        self.train_size = train_size
        self.balanced = balanced
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.normalize = normalize
        self.on_device = on_device
        self.eval_train_set = eval_train_set
        self.corruption = corruption or Corruption()
        self.seed = seed
        self.splits: dict[str, Split] = {}
        self.label_noise = 0.0

    # -- loading, done once before training -------------------------------------------
    def prepare(self, raw: RawData) -> RawData:
        """The data set as every member of a stack sees it: cropped, binarized."""
        self._check_sizes(raw.train, self.crop)
        if self.crop is not None:
            raw = RawData(
                centre_crop(raw.train, self.crop), centre_crop(raw.test, self.crop), raw.num_classes
            )
        if self.binarize:
            raw = RawData(binarize(raw.train), binarize(raw.test), raw.num_classes)
        return raw

    def _check_sizes(self, train: Split, crop: int | None = None) -> None:
        """The config check's rule (validation.check_data) against the data as loaded."""
        side = min(train.images.shape[-2:])
        error = data_size_error(self.name, len(train), side, crop, self.val_size, self.train_size)
        if error:
            raise sources.DataError(error)

    def load(self, prepared: RawData | None = None) -> TensorDataModule:
        """Draw everything random from the seed. ``prepared`` (``prepare``'s result) saves
        reading and cropping the files again when several members share them."""
        if prepared is None:
            prepared = self.prepare(sources.load(self.name, self.root, self.download))
        raw = prepared
        self.num_classes = raw.num_classes
        train = raw.train
        self._check_sizes(train)
        train, val = holdout(train, self.val_size, generator(self.seed, Stream.SPLIT))
        if self.train_size is not None:
            gen = generator(self.seed, Stream.SUBSET)
            train = subset(train, self.train_size, self.balanced, self.num_classes, gen)
        clean_labels = train.labels
        held_out = [val, raw.test]
        gen = generator(self.seed, Stream.CORRUPTION)
        train, (val, test) = self.corruption.apply(train, held_out, self.num_classes, gen)
        self.label_noise = float((train.labels != clean_labels).float().mean())
        self.splits = {"train": train, "val": val, "test": test}
        self._set_normalization(train.images)
        return self

    def _set_normalization(self, images: torch.Tensor) -> None:
        """input = pixel · scale + shift per channel: standardisation as one affine map."""
        if self.normalize == "standardize":
            pixels = images.float().div_(255.0)
            mean = pixels.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
            std = pixels.std(dim=(0, 2, 3)).view(1, -1, 1, 1)
            self.scale, self.shift = 1.0 / (255.0 * std), -mean / std
        else:
            self.scale, self.shift = torch.full((1,), 1.0 / 255.0), torch.zeros(1)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].images.shape[1:])

    # -- evaluation, outside a stack (scripts, reglab.load) -------------------------------
    def eval_names(self) -> list[str]:
        """The splits evaluated each epoch, in dataloader order."""
        names = ["val"] if len(self.splits["val"]) else []
        return [*names, "test", *(["train_eval"] if self.eval_train_set else [])]

    def eval_batches(self, split: str) -> TensorBatches:
        data = self.splits["train" if split == "train_eval" else split]
        sampler = EpochPermutation(len(data), seed=None)
        return TensorBatches(data.images, data.labels, self.eval_batch_size, sampler)

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels on the 0–255 scale (uint8, or float if synthetic) → normalised float32."""
        scale, shift = self.scale.to(images.device), self.shift.to(images.device)
        x = images.to(torch.float32).mul_(scale) if images.dtype == torch.uint8 else images * scale
        if self.normalize == "per_image":  # Zhang et al. App. A: per-image whitening
            flat = x.flatten(1)
            std = flat.std(dim=1).clamp_min(1.0 / flat.shape[1] ** 0.5)
            return (x - flat.mean(dim=1).view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)
        return x.add_(shift)
