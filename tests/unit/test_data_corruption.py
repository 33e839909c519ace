"""Each corruption does what Zhang et al. (2017) §2.1 says, once per seed."""

import pytest
import torch

from reglab.data import GaussianPixels, PartialLabels, RandomPixels, ShuffledPixels
from reglab.data.sources import Split
from reglab.seeding import Stream, generator


def _splits(n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    test = Split(images[:500].clone(), labels[:500].clone())
    return Split(images, labels), test


def _apply(corruption, seed=0):
    train, test = _splits()
    out, (test_out,) = corruption.apply(train, [test], 10, generator(seed, Stream.CORRUPTION))
    return train, test, out, test_out


@pytest.mark.parametrize("q", [0.0, 0.2, 0.6, 1.0])
def test_partial_labels_changes_about_q_times_nine_tenths(q):
    train, test, out, test_out = _apply(PartialLabels(q))
    changed = (out.labels != train.labels).float().mean().item()
    assert abs(changed - 0.9 * q) < 0.03
    assert torch.equal(out.images, train.images)
    assert torch.equal(test_out.labels, test.labels) and torch.equal(test_out.images, test.images)


def test_random_labels_are_uniform_over_classes():
    _, _, out, _ = _apply(PartialLabels(1.0))
    counts = torch.bincount(out.labels, minlength=10).float() / len(out.labels)
    assert counts.min() > 0.08 and counts.max() < 0.12


def test_corruption_is_fixed_by_the_seed():
    assert torch.equal(
        _apply(PartialLabels(0.5), 3)[2].labels, _apply(PartialLabels(0.5), 3)[2].labels
    )
    assert not torch.equal(
        _apply(PartialLabels(0.5), 3)[2].labels, _apply(PartialLabels(0.5), 4)[2].labels
    )


def test_shuffled_pixels_uses_one_permutation_for_train_and_test():
    train, test, out, test_out = _apply(ShuffledPixels())
    flat_in = train.images.flatten(1).long()
    flat_out = out.images.flatten(1).long()
    # find the permutation from an image whose pixels are all distinct
    probe = torch.arange(36, dtype=torch.uint8).view(1, 1, 6, 6)
    shuffled, (_probe_out,) = ShuffledPixels().apply(
        Split(probe, torch.zeros(1, dtype=torch.long)),
        [Split(probe, torch.zeros(1))],
        10,
        generator(0, Stream.CORRUPTION),
    )
    perm = shuffled.images.flatten().long()
    assert not torch.equal(perm, torch.arange(36))
    assert torch.equal(flat_out, flat_in[:, perm])
    assert torch.equal(test_out.images.flatten(1).long(), test.images.flatten(1).long()[:, perm])
    assert torch.equal(out.labels, train.labels) and torch.equal(test_out.labels, test.labels)


def test_random_pixels_permutes_each_image_independently_and_leaves_test_alone():
    train, test, out, test_out = _apply(RandomPixels())
    sorted_in = train.images.flatten(1).sort(1).values
    sorted_out = out.images.flatten(1).sort(1).values
    assert torch.equal(sorted_in, sorted_out)  # same pixels, other places
    assert not torch.equal(out.images, train.images)
    assert torch.equal(test_out.images, test.images)
    # different images get different permutations: compare with the one shared permutation
    probe = torch.arange(36, dtype=torch.uint8).view(1, 1, 6, 6).expand(3, 1, 6, 6).contiguous()
    shuffled, _ = RandomPixels().apply(
        Split(probe, torch.zeros(3, dtype=torch.long)), [], 10, generator(0, Stream.CORRUPTION)
    )
    perms = shuffled.images.flatten(1)
    assert not torch.equal(perms[0], perms[1]) and not torch.equal(perms[1], perms[2])


def test_gaussian_matches_the_training_mean_and_variance():
    train, test, out, test_out = _apply(GaussianPixels())
    pixels = train.images.float()
    assert abs(out.images.mean().item() - pixels.mean().item()) < 0.5
    assert abs(out.images.std().item() - pixels.std().item()) < 0.5
    assert out.images.dtype == torch.float32
    assert torch.equal(out.labels, train.labels)
    assert torch.equal(test_out.images, test.images)
