"""The randomization tests of Zhang et al. (ICLR 2017, §2.1), applied once per seed.

Corruptions are drawn once, from the run's corruption stream, so the same (possibly
wrong) labels and pixels are seen every epoch. Test labels are never corrupted; only
``ShuffledPixels`` touches test (and validation) images, with the very permutation used
for training, as in the paper.
"""

from __future__ import annotations

import torch

from reglab.data.sources import Split


class Corruption:
    """No corruption: true labels and images."""

    name = "none"

    def apply(
        self, train: Split, held_out: list[Split], num_classes: int, gen: torch.Generator
    ) -> tuple[Split, list[Split]]:
        """Corrupt ``train`` (and, where the paper does, the held-out splits)."""
        return train, held_out


class PartialLabels(Corruption):
    """Each training label independently, with probability q, becomes a uniform random class.

    With 10 classes about 0.9·q of the labels end up wrong; q = 1 gives random labels.
    """

    name = "partial_labels"

    def __init__(self, q: float) -> None:
        self.q = q

    def apply(self, train, held_out, num_classes, gen):
        n = len(train)
        replace = torch.rand(n, generator=gen) < self.q
        random_labels = torch.randint(0, num_classes, (n,), generator=gen)
        return train.with_labels(torch.where(replace, random_labels, train.labels)), held_out


def _permute_pixels(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Apply one pixel permutation to every image (all channels move together)."""
    n, c, h, w = images.shape
    return images.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)


class ShuffledPixels(Corruption):
    """One random permutation of pixel positions, applied to every train and test image."""

    name = "shuffled_pixels"

    def apply(self, train, held_out, num_classes, gen):
        h, w = train.images.shape[-2:]
        perm = torch.randperm(h * w, generator=gen)
        self.permutation = perm  # what a trained model's inputs need (reglab.load_model)
        shuffle = lambda s: Split(_permute_pixels(s.images, perm), s.labels)  # noqa: E731
        return shuffle(train), [shuffle(s) for s in held_out]


class RandomPixels(Corruption):
    """An independent random permutation of pixel positions for each training image."""

    name = "random_pixels"
    chunk = 8192  # bounds the memory of the (chunk, H·W) index tensor

    def apply(self, train, held_out, num_classes, gen):
        n, c, h, w = train.images.shape
        flat = train.images.reshape(n, c, h * w)
        out = torch.empty_like(flat)
        for start in range(0, n, self.chunk):
            block = flat[start : start + self.chunk]
            perms = torch.rand(len(block), h * w, generator=gen).argsort(dim=1)
            out[start : start + self.chunk] = block.gather(2, perms.unsqueeze(1).expand(-1, c, -1))
        return Split(out.reshape(n, c, h, w), train.labels), held_out


class GaussianPixels(Corruption):
    """Training images replaced by Gaussian noise with the training set's mean and variance.

    Per channel, on the 0–255 pixel scale; stored as float32 (not rounded or clipped).
    """

    name = "gaussian"

    def apply(self, train, held_out, num_classes, gen):
        pixels = train.images.float()
        mean = pixels.mean(dim=(0, 2, 3), keepdim=True)
        std = pixels.std(dim=(0, 2, 3), keepdim=True)
        noise = torch.randn(pixels.shape, generator=gen) * std + mean
        return Split(noise, train.labels), held_out
