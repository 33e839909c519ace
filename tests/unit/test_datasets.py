"""reglab.datasets: one table of data-set facts (sizes, shape, classes, files, title) that
validation, stacking's estimates, the data sources, the model's input shape and the report
all read (tests/unit/test_data.py checks it against the real files; that it loads no
torch: tests/e2e/test_import.py)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from reglab import datasets, stacking
from reglab.datasets import DATASETS, cropped, data_size_error, input_shape


def test_input_shape_after_crop_and_classes() -> None:
    assert input_shape(OmegaConf.create({"name": "cifar10", "crop": 28})) == ((3, 28, 28), 10)
    assert input_shape(OmegaConf.create({"name": "digits", "crop": None})) == ((1, 8, 8), 10)
    assert cropped((1, 28, 28), 40) == (1, 28, 28) and cropped((1, 28, 28), 0) == (1, 28, 28)


def test_size_rule() -> None:
    assert data_size_error("mnist", 60000, 28, 29, 0, None) == (
        "data.crop=29: must be <= 28 (image size)"
    )
    assert "must be < 1437" in data_size_error("digits", 1437, 8, None, 1437, None)
    assert "[1, 1337]" in data_size_error("digits", 1437, 8, None, 100, 2000)
    assert data_size_error("digits", 1437, 8, 8, 100, 1337) is None


def test_validation_reads_the_table() -> None:
    from reglab.validation import RULES, ConfigError, check_data

    [(_, ok, allowed)] = [r for r in RULES if r[0] == "data.name"]
    assert all(ok(name) for name in DATASETS) and not ok("svhn")
    assert allowed == "one of " + ", ".join(DATASETS)
    with pytest.raises(ConfigError, match=r"data.train_size=1500: must be in \[1, 1437\]"):
        check_data(OmegaConf.create({"name": "digits", "train_size": 1500, "root": "."}))


def test_stacking_estimates_read_the_table(monkeypatch) -> None:
    config = {"data": {"name": "cifar10", "crop": 30}, "model": {"hidden": [5]}}
    n_train, n_test, shape = stacking._data_shape(config)
    assert (n_train, n_test, shape) == (50_000, 10_000, (3, 30, 30))
    params, _ = stacking._layers(config)
    assert params == 3 * 30 * 30 * 5 + 5 + 5 * 10 + 10
    more = datasets.DataSet("x", 50_000, 10_000, (3, 32, 32), 20)  # the classes come from it
    monkeypatch.setitem(DATASETS, "cifar10", more)
    assert stacking._layers(config)[0] == params + 5 * 10 + 10


def test_the_report_reads_the_table() -> None:
    import pandas as pd

    from reglab.report.runinfo import data_description, train_size

    assert train_size({"data": {"name": "mnist", "val_size": 10000}}) == 50_000
    runs = pd.DataFrame({"config": [{"data": {"name": "cifar10", "train_size": 10}}]})
    assert data_description(runs).startswith("CIFAR-10, 10 training images")


def test_the_sources_load_each_data_set_of_the_table_and_check_it() -> None:
    from reglab.data import sources

    assert set(sources.LOADERS) == set(DATASETS)
    raw = sources.load("digits", ".", download=False)
    assert raw.num_classes == DATASETS["digits"].num_classes
    assert (len(raw.train), len(raw.test)) == (1437, 360)
    bad = sources.RawData(raw.train, sources.Split(raw.test.images[:, :, :7], raw.test.labels), 10)
    with pytest.raises(sources.DataError, match=r"test images are \(1, 7, 8\), not \(1, 8, 8\)"):
        sources.check_facts("digits", bad)
    labels = raw.train.labels.clone()
    labels[0] = 10
    with pytest.raises(sources.DataError, match=r"train labels are not in \[0, 10\)"):
        sources.check_facts("digits", sources.RawData(raw.train.with_labels(labels), raw.test, 10))
    assert torch.equal(raw.test.rows, torch.arange(1437, 1797))
