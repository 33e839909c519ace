"""Loading, hold-out, subsets, batches: seeded, the asked sizes, no leaks."""

import shutil

import pytest
import torch

from reglab.data import DataError, PartialLabels, TensorDataModule
from reglab.data.batches import EpochPermutation, TensorBatches
from reglab.data.datamodule import binarize, centre_crop, subset
from reglab.data.sources import Split, load


def _split(n=1000):
    return Split(torch.arange(n).view(n, 1, 1, 1).to(torch.uint8), torch.arange(n) % 10)


@pytest.mark.parametrize("size", [1, 37, 500])
def test_subset_has_the_asked_size_and_is_seeded(size):
    data = _split()
    a = subset(data, size, False, 10, torch.Generator().manual_seed(1))
    b = subset(data, size, False, 10, torch.Generator().manual_seed(1))
    c = subset(data, size, False, 10, torch.Generator().manual_seed(2))
    assert len(a) == size
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    if size > 1:
        assert not torch.equal(a.images, c.images)


def test_balanced_subset_has_equal_class_counts():
    out = subset(_split(), 50, True, 10, torch.Generator().manual_seed(0))
    assert torch.bincount(out.labels, minlength=10).tolist() == [5] * 10


def test_epoch_permutations_are_seeded_and_cover_everything():
    sampler = EpochPermutation(103, seed=5)
    batches = TensorBatches(torch.arange(103), torch.arange(103), 10, sampler)
    assert len(batches) == 11
    epoch0 = torch.cat([x for x, _ in batches])
    assert sorted(epoch0.tolist()) == list(range(103))
    sampler.set_epoch(1)
    epoch1 = torch.cat([x for x, _ in batches])
    assert not torch.equal(epoch0, epoch1)
    sampler.set_epoch(0)
    assert torch.equal(torch.cat([x for x, _ in batches]), epoch0)


def test_batches_resume_mid_epoch_from_their_state():
    sampler = EpochPermutation(50, seed=1)
    batches = TensorBatches(torch.arange(50), torch.arange(50), 8, sampler)
    sampler.set_epoch(3)
    full = [x for x, _ in batches]
    it = iter(batches)
    next(it), next(it)
    state = batches.state_dict()
    resumed = TensorBatches(torch.arange(50), torch.arange(50), 8, EpochPermutation(50, seed=1))
    resumed.load_state_dict(state)
    rest = [x for x, _ in resumed]
    assert all(
        torch.equal(a, b) for a, b in zip(rest, full[state["batches_served"] :], strict=True)
    )


def test_mnist_module_holds_out_validation_and_subsets_the_rest(data_dir):
    dm = TensorDataModule(
        "mnist",
        str(data_dir),
        download=False,
        val_size=10_000,
        train_size=5_000,
        corruption=PartialLabels(0.5),
        seed=0,
    ).load()
    train, val, test = dm.splits["train"], dm.splits["val"], dm.splits["test"]
    assert (len(train), len(val), len(test)) == (5_000, 10_000, 10_000)
    assert train.images.dtype == torch.uint8 and dm.input_shape == (1, 28, 28)
    assert 0.4 < dm.label_noise < 0.5  # ≈ 0.9 · q
    # validation images are not among the training images (hold-out, then subset)
    train_keys = set(map(bytes, train.images.flatten(1).numpy()))
    assert not train_keys & set(map(bytes, val.images[:500].flatten(1).numpy()))
    # test labels untouched: same as the official file
    raw = load("mnist", data_dir, download=False)
    assert torch.equal(test.labels, raw.test.labels)


def test_centre_crop_keeps_the_central_pixels():
    """Zhang et al. App. A: the central 28x28 of CIFAR's 32x32; here 4x4 of 6x6 and 3x3."""
    images = torch.arange(2 * 6 * 6, dtype=torch.uint8).view(2, 1, 6, 6)
    split = Split(images, torch.tensor([0, 1]))
    assert torch.equal(centre_crop(split, 4).images, images[..., 1:5, 1:5])
    assert torch.equal(centre_crop(split, 3).images, images[..., 1:4, 1:4])
    # the data module refuses a crop larger than the images it loaded (config_keys' rule)
    with pytest.raises(DataError, match=r"data\.crop=9: must be <= 8 \(image size\)"):
        TensorDataModule("digits", root="unused", val_size=100, crop=9).load()
    with pytest.raises(DataError, match=r"data\.val_size=1437: must be < 1437 \(digits"):
        TensorDataModule("digits", root="unused", val_size=1437).load()
    with pytest.raises(DataError, match=r"data\.train_size=1338: must be in \[1, 1337\]"):
        TensorDataModule("digits", root="unused", val_size=100, train_size=1338).load()


def test_crop_applies_to_every_split():
    data = TensorDataModule("digits", root="unused", val_size=100, crop=6).load()
    assert data.input_shape == (1, 6, 6)
    assert {tuple(s.images.shape[1:]) for s in data.splits.values()} == {(1, 6, 6)}


def test_binarize_thresholds_at_half_intensity():
    """Ioffe & Szegedy §4.1: "a 28x28 binary image as input"."""
    images = torch.tensor([0, 1, 127, 128, 200, 255], dtype=torch.uint8).view(1, 1, 2, 3)
    split = binarize(Split(images, torch.tensor([3])))
    assert split.images.dtype == torch.uint8
    assert split.images.flatten().tolist() == [0, 0, 0, 255, 255, 255]
    assert split.labels.tolist() == [3]


def test_binary_input_reaches_the_net_as_zeros_and_ones():
    data = TensorDataModule("digits", root="unused", val_size=100, binarize=True, normalize="unit")
    data.load()
    for split in data.splits.values():
        assert set(split.images.unique().tolist()) == {0, 255}
    batch = data.to_input(data.splits["train"].images[:64])
    assert set(batch.unique().tolist()) == {0.0, 1.0}
    grey = TensorDataModule("digits", root="unused", val_size=100).load()
    assert len(grey.splits["train"].images.unique()) > 2  # off by default


def test_digits_load_offline():
    data = load("digits", "unused")
    assert data.train.images.shape[1:] == (1, 8, 8)
    assert len(data.train) + len(data.test) == 1797
    assert data.train.images.max() == 255


def test_missing_data_without_download_is_one_clear_line(tmp_path):
    with pytest.raises(DataError) as error:
        load("mnist", tmp_path, download=False)
    message = str(error.value)
    assert "\n" not in message and "data.root" in message and "data.download" in message


def test_missing_data_without_network_is_one_clear_line(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    monkeypatch.setattr(tv_mnist.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError) as error:
        load("mnist", tmp_path, download=True)
    message = str(error.value)
    assert "\n" not in message and "download failed" in message and "REGLAB_DATA_DIR" in message


def test_truncated_mnist_file_is_detected(tmp_path, data_dir):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(data_dir / "MNIST" / "raw", raw)
    with (raw / "t10k-labels-idx1-ubyte").open("r+b") as f:
        f.truncate(5000)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is corrupted or truncated"):
        load("mnist", tmp_path, download=False)


def test_unknown_data_set_names_the_key():
    with pytest.raises(DataError, match=r"data.name='svhn': allowed are mnist"):
        load("svhn", "unused")


def _write_idx(path, array):
    """An IDX file as torchvision reads it (uint8 data, big-endian dims)."""
    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_loads_from_torchvision_layout(tmp_path):
    """Fashion-MNIST's real loading path, on a synthetic stand-in of the same shapes."""
    import numpy as np

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    data = load("fashion_mnist", tmp_path, download=False)
    assert data.train.images.shape == (60, 1, 28, 28) and data.test.images.shape == (10, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8 and data.num_classes == 10


def test_the_light_data_set_facts_match_the_loaded_data(data_dir, tmp_path):
    """reglab.datasets describes each data set for validation without torch: its sizes,
    shape and classes (checked on MNIST and digits here) and the files torchvision reads
    (a Fashion-MNIST stand-in made of exactly its files loads)."""
    from reglab.datasets import DATASETS

    for name, root in (("mnist", data_dir), ("digits", tmp_path)):
        raw, facts = load(name, root, download=False), DATASETS[name]
        assert (len(raw.train), len(raw.test)) == (facts.train_size, facts.test_size)
        assert tuple(raw.train.images.shape[1:]) == facts.shape
        assert sorted(set(raw.train.labels.tolist())) == list(range(facts.num_classes))
    assert all((data_dir / f).is_file() for f in DATASETS["mnist"].files)
    for f in DATASETS["fashion_mnist"].files:
        path = tmp_path / f
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 60 if "train" in f else 10
        images = "images" in f
        import numpy as np

        _write_idx(path, np.zeros((n, 28, 28) if images else (n,)))
    assert len(load("fashion_mnist", tmp_path, download=False).train) == 60


def _stack_inputs(data, steps: list[int]) -> list[torch.Tensor]:
    """Every member's training batch at ``steps`` and its inputs of each evaluated split."""
    data._orders = [(-1, None)] * len(steps)
    x, _ = data.train_batch(steps, torch.tensor(steps), data.batch_size)
    members = torch.arange(len(steps))
    splits = ("test", "val", "train_eval")
    return [x] + [torch.cat([b[0] for b in data.eval_batches(s, members)], 1) for s in splits]


@pytest.mark.parametrize("normalize", ["per_image", "unit", "standardize"])
def test_stack_inputs_computed_once_equal_the_per_batch_ones(data_dir, normalize):
    """StackData normalizes the test set once per stack and reads per-image statistics
    instead of reducing each batch; every member's inputs stay bitwise what a per-batch
    computation gives, with private images (random pixels) and without a shared test set
    (shuffled pixels permute the test images too), and with a float32 base (Gaussian
    pixels), which the statistics must not change."""
    from reglab.data import GaussianPixels, RandomPixels, ShuffledPixels
    from reglab.data.stack import StackData

    raw = load("mnist", data_dir, download=False)
    for corruptions in (
        (None, RandomPixels(), PartialLabels(q=0.5)),
        (None, ShuffledPixels()),
        (None, GaussianPixels()),
    ):
        modules = [
            TensorDataModule("mnist", str(data_dir), download=False, train_size=500,
                             batch_size=50, normalize=normalize, seed=seed, corruption=c)
            .load(raw)
            for seed, c in enumerate(corruptions)
        ]  # fmt: skip
        data = StackData(modules, raw, torch.device("cpu"))
        steps = [3, 7, 9][: len(modules)]
        once = _stack_inputs(data, steps)
        base = data.base.clone()
        once = once + _stack_inputs(data, steps)  # twice: nothing computed once drifts
        assert torch.equal(data.base, base)
        shared = data._shared.get("test") is not None
        assert "test" in data._shared  # the answer is cached, None included
        own_test = any(isinstance(c, ShuffledPixels) for c in corruptions)
        assert shared == (normalize != "standardize" and not own_test)
        data.same_constants, data._shared = False, {}  # the per-batch computation
        for a, b in zip(once, 2 * _stack_inputs(data, steps), strict=True):
            assert torch.equal(a, b)
