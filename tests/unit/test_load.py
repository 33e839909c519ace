"""A completed run keeps its final weights; reglab.load_model gives the trained network and
the input transform it was trained with: applied to the raw test images it reproduces the
summary's test error exactly (crop, binarize, shuffled pixels, saved normalization). The
network is in eval mode (dropout deterministic), and model.pt files of earlier releases
(no ``seed`` in the payload) load too. (The runs train in this process: a run's model.pt
does not depend on how the run was started.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import compose_config, read_summary

import reglab
from reglab.data import sources
from reglab.load import MODEL_FILE
from reglab.member import Job
from reglab.models import CNN, MLP, DropoutSpec, RetentionDropout
from reglab.run import run_stack


@pytest.mark.slow
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
    (summary,) = run_stack([Job(compose_config(*common, *overrides), run_dir)])
    assert summary["status"] == "completed", summary.get("error")
    assert torch.load(run_dir / MODEL_FILE, weights_only=True)  # weights only
    rng = torch.random.get_rng_state()
    model, to_input = reglab.load_model(run_dir)
    assert torch.equal(torch.random.get_rng_state(), rng)  # the user's random state is theirs
    assert not model.training
    test = sources.load("mnist", data_dir, download=False).test
    with torch.no_grad():
        logits = model(to_input(test.images))
        assert torch.equal(logits, model(to_input(test.images)))  # dropout: deterministic
    predicted = logits.argmax(1)
    error = 100.0 * int((predicted != test.labels).sum()) / len(test.labels)
    assert (
        error == read_summary(run_dir)["metrics"]["test_error"] == summary["metrics"]["test_error"]
    )


def _spec(shape: tuple[int, ...]) -> dict:
    return {
        "crop": None, "binarize": False, "normalize": "standardize",
        "scale": torch.full((shape[0],), 1 / 255), "shift": torch.full((shape[0],), -0.5),
        "pixel_permutation": None, "input_shape": list(shape), "num_classes": 10,
    }  # fmt: skip


DROPOUT = {"_target_": "reglab.models.DropoutSpec", "p_input": 0.8, "p_hidden": 0.5,
           "spatial": True, "mode": "weight_scaling", "mc_samples": 0}  # fmt: skip
OLDER = {  # name: model class, input shape, model config, dropout config, dropout layers
    "mlp-dropout": (
        MLP, (1, 28, 28), {"hidden": [16], "activation": "relu", "batchnorm": False,
                           "init_std": None}, DROPOUT, 2,
    ),
    "cnn-bn-dropout": (
        CNN, (3, 12, 12), {"channels": [4], "kernel_size": 3, "pool": 2, "fc": [8],
                           "activation": "relu", "batchnorm": True, "init_std": None}, DROPOUT, 3,
    ),
    "mlp-no-dropout-key": (MLP, (1, 28, 28), {"hidden": [16]}, None, 0),
}  # fmt: skip


@pytest.mark.parametrize("name", OLDER)
def test_a_model_file_of_an_earlier_release_loads(tmp_path: Path, name: str) -> None:
    """The payload earlier releases wrote: no ``seed`` (and, earlier still, no ``dropout``);
    a state dict without dropout entries (their layers hold no saved state then or now)."""
    cls, shape, model_cfg, dropout, dropping = OLDER[name]
    spec = DropoutSpec(**{k: v for k, v in (dropout or {}).items() if k != "_target_"})
    trained = cls(shape, 10, **model_cfg, dropout=spec, seed=5)
    with torch.no_grad():
        for t in trained.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t).abs() + 0.1)  # not an initialization reglab draws
    state = trained.state_dict()
    assert not any(k.startswith("drop") or ".drop" in k for k in state)
    payload = {
        "state_dict": state,
        "input": _spec(shape),
        "model": {"_target_": f"reglab.models.{cls.__name__}", **model_cfg},
    }
    if dropout is not None:
        payload["dropout"] = dropout
    torch.save(payload, tmp_path / MODEL_FILE)
    model, to_input = reglab.load_model(tmp_path)
    assert not model.training and type(model) is cls
    drops = [m for m in model.modules() if isinstance(m, RetentionDropout) and not m.all_retained]
    assert len(drops) == dropping
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    images = torch.randint(0, 256, (6, *shape), dtype=torch.uint8)
    x = to_input(images)
    assert torch.allclose(x, images.float() / 255 - 0.5, atol=1e-6)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out, model(x))  # eval: no masks
        assert torch.equal(out, trained.eval()(x))
