"""What the illustration programs share: their MNIST subset, their JSON, their command line,
and Lightning's Trainer, which trains their models as it trains ``reglab-train``'s."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from reglab.data import TensorDataModule
from reglab.data.datamodule import Normalization

#: Lightning's notes that say nothing about an illustration: banners, no DataLoader
#: workers (the data are in memory), the stack's endless fetched-in-step batches.
_NOTES = (".*does not have many workers.*", ".*`dataloader_iter`.*", ".*LeafSpec.*")


def load_mnist(
    train_size: int, seed: int, root: str | None = None, normalize: Normalization = "standardize"
) -> TensorDataModule:
    """A seeded MNIST subset, no validation hold-out (root: else $REGLAB_DATA_DIR)."""
    data = TensorDataModule(
        "mnist", data_root(root), download=False, val_size=0, train_size=train_size,
        normalize=normalize, seed=seed,
    )  # fmt: skip
    return data.load()


def data_root(root: str | None = None) -> str:
    """The data sets' root: ``root``, else $REGLAB_DATA_DIR, else ``data``."""
    return str(root or os.environ.get("REGLAB_DATA_DIR", "data"))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Lightning without its banners and notes (:data:`_NOTES`), as ``reglab-train``."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for note in _NOTES:
            warnings.filterwarnings("ignore", message=note)
        yield


def fit(module, steps: int, callbacks: Sequence = (), **data: Any):
    """``steps`` optimizer steps of the LightningModule ``module`` in Lightning's Trainer
    (on the CPU, without loggers, checkpoints, bars or validation); ``data``: ``datamodule=``
    or ``train_dataloaders=``, as ``Trainer.fit`` takes them. Returns the Trainer."""
    import pytorch_lightning as pl

    with quiet():
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, max_epochs=-1, max_steps=steps,
            callbacks=list(callbacks), logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, limit_val_batches=0,
        )  # fmt: skip
        trainer.fit(module, **data)
    return trainer


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
