"""A completed run keeps its final weights; reglab.load_model gives the trained network and
the input transform it was trained with: applied to the raw test images it reproduces the
summary's test error exactly (crop, binarize, shuffled pixels, saved normalization)."""

from __future__ import annotations

import pytest
import torch
from conftest import read_summary, run_ok

import reglab
from reglab.data import sources

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "overrides",
    [
        ["data.crop=24", "corruption=shuffled_pixels", "dropout=standard"],
        ["data.binarize=true", "data.normalize=unit", "model.batchnorm=true"],
        ["data.normalize=per_image", "dropout=hidden", "dropout.mode=weight_scaling"],
    ],
    ids=["crop-shuffled", "binary-bn", "per-image-weight-scaling"],
)
def test_the_saved_model_reproduces_the_test_error(tmp_path, data_dir, overrides):
    run_dir = tmp_path / "run"
    common = ["data.train_size=1000", "model.hidden=[64]", "trainer.max_steps=30"]
    summary = run_ok(*common, *overrides, run_dir=run_dir, cwd=tmp_path)
    assert torch.load(run_dir / "model.pt", weights_only=True)  # weights only
    model, to_input = reglab.load_model(run_dir)
    assert not model.training
    test = sources.load("mnist", data_dir, download=False).test
    with torch.no_grad():
        predicted = model(to_input(test.images)).argmax(1)
    error = 100.0 * int((predicted != test.labels).sum()) / len(test.labels)
    assert (
        error == read_summary(run_dir)["metrics"]["test_error"] == summary["metrics"]["test_error"]
    )
