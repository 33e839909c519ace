"""A trained model to load: ``reglab.load_model(run_dir)`` in a notebook.

Every completed run keeps ``model.pt`` (weights only: ``torch.load(..., weights_only=True)``
reads it): the network's weights and buffers, and what its inputs went through — crop,
binarization, the shuffled-pixels permutation (Zhang et al. §2.1) and the normalization
constants computed on that run's own training set.

    model, to_input = reglab.load_model("logs/runs/default/2026-11-30_12-00-00")
    logits = model(to_input(raw_uint8_images))   # (N, C, H, W) as the data set stores them
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

MODEL_FILE = "model.pt"


@dataclass
class InputTransform:
    """Raw images (uint8 on the 0–255 scale, as the data set stores them) → the network's
    input, exactly as the run's training and evaluation saw them."""

    crop: int | None
    binarize: bool
    normalize: str
    scale: torch.Tensor
    shift: torch.Tensor
    pixel_permutation: torch.Tensor | None = None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        from reglab.data.corruption import _permute_pixels
        from reglab.data.datamodule import binarize, centre_crop
        from reglab.data.sources import Split

        split = Split(images, torch.zeros(len(images), dtype=torch.long))
        if self.crop is not None:
            split = centre_crop(split, self.crop)
        if self.binarize:
            split = binarize(split)
        x = split.images
        if self.pixel_permutation is not None:
            x = _permute_pixels(x, self.pixel_permutation)
        scale = self.scale.to(x.device).view(1, -1, 1, 1)
        shift = self.shift.to(x.device).view(1, -1, 1, 1)
        x = x.to(torch.float32).mul_(scale) if x.dtype == torch.uint8 else x * scale
        if self.normalize == "per_image":
            flat = x.flatten(1)
            std = flat.std(dim=1).clamp_min(1.0 / flat.shape[1] ** 0.5)
            return (x - flat.mean(dim=1).view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)
        return x.add_(shift)


def input_spec(data) -> dict:
    """What :class:`InputTransform` needs, from a member's loaded ``TensorDataModule``."""
    return {
        "crop": data.crop,
        "binarize": data.binarize,
        "normalize": data.normalize,
        "scale": data.scale.reshape(-1).clone(),
        "shift": data.shift.reshape(-1).clone(),
        "pixel_permutation": getattr(data.corruption, "permutation", None),
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
    }


def save_model(path: Path, state_dict: dict, spec: dict, config: dict) -> None:
    payload = {"state_dict": state_dict, "input": spec, "model": config["model"]}
    payload |= {"dropout": config["dropout"], "seed": config.get("seed", 0)}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


#: What a ``model.pt`` of an older release may lack: its dropout (none) and seed (which
#: only chooses dropout masks and the initial weights, both replaced or unused here).
OLDER_DEFAULTS = {"dropout": {"_target_": "reglab.models.DropoutSpec"}, "seed": 0}


def load_model(run_dir: str | Path) -> tuple[nn.Module, InputTransform]:
    """The trained network of a completed run, in eval mode (deterministic: dropout keeps
    every unit, or scales by p), and its input transform. The network is built as the run
    built it (:func:`reglab.classifier.build_model`: a user's model too, its ``nn.Dropout``
    bound to reglab's masks), without touching torch's global random state."""
    path = Path(run_dir) / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model (is the run completed?)")
    from omegaconf import OmegaConf

    from reglab.classifier import build_model

    saved = torch.load(path, map_location="cpu", weights_only=True)
    spec = dict(saved["input"])
    shape, classes = spec.pop("input_shape"), spec.pop("num_classes")
    cfg = OmegaConf.create({"model": saved["model"]})
    for key, default in OLDER_DEFAULTS.items():
        cfg[key] = saved.get(key, default)
    with torch.random.fork_rng(devices=[]):  # build_model seeds the initialization
        model = build_model(cfg, tuple(shape), classes)
    model.load_state_dict(saved["state_dict"])
    return model.eval(), InputTransform(**spec)
