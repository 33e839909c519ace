"""What the illustration programs share: their MNIST subset, their JSON, their command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from reglab.data import TensorDataModule
from reglab.data.datamodule import Normalization


def load_mnist(
    train_size: int, seed: int, root: str | None = None, normalize: Normalization = "standardize"
) -> TensorDataModule:
    """A seeded MNIST subset, no validation hold-out (root: else $REGLAB_DATA_DIR)."""
    root = root or os.environ.get("REGLAB_DATA_DIR", "data")
    data = TensorDataModule(
        "mnist", root, download=False, val_size=0, train_size=train_size, normalize=normalize,
        seed=seed,
    )  # fmt: skip
    return data.load()


def write_caption(out: Path, stem: str, caption: str, numbers: dict[str, Any]) -> None:
    """``out/<stem>.json``: the figure's caption and numbers, as the report reads them."""
    payload = {"caption": caption, "numbers": numbers}
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


def parse_settings(doc: str, defaults: Any, options: Sequence[str], argv=None) -> tuple[Path, Any]:
    """``--out``, ``--threads`` and one ``--<option>`` per named field of the ``defaults``
    dataclass (typed by its default); sets torch's threads; returns (out, settings)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/illustrations"))
    for name in options:
        value = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return args.out, dataclasses.replace(defaults, **{n: getattr(args, n) for n in options})
