"""Training metrics are summed on the device and logged once an epoch: check the sums."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_config
from hydra.utils import instantiate

from reglab.callbacks import HistoryRecorder
from reglab.module import Classifier
from reglab.run import build_data, build_model


class StepLosses(pl.Callback):
    """The per-step data loss and penalty, recomputed from the module's outputs."""

    def __init__(self) -> None:
        self.losses: list[list[float]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.losses.append([])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses[-1].append(float(pl_module.last_train_loss))


def _fit(tmp_path, regularizer: str, **trainer_kwargs):
    cfg = compose_config("data=digits", f"regularizer={regularizer}", "data.batch_size=100")
    data = build_data(cfg)
    module = Classifier(
        build_model(cfg, data),
        instantiate(cfg.optimizer),
        instantiate(cfg.regularizer),
        data.eval_names(),
    )
    steps, history = StepLosses(), HistoryRecorder()
    trainer = pl.Trainer(
        logger=False,
        callbacks=[steps, history],
        enable_progress_bar=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule=data)
    n = len(data.splits["train"])
    sizes = torch.tensor([100] * (n // 100) + ([n % 100] if n % 100 else []), dtype=torch.float)
    return history.history, steps.losses, sizes


@pytest.mark.parametrize("regularizer", ["none", "l2"])
def test_epoch_means_equal_the_mean_of_the_step_losses(tmp_path, regularizer):
    rows, losses_by_epoch, sizes = _fit(tmp_path, regularizer, max_epochs=2)
    assert [row["epoch"] for row in rows] == [0, 1]
    for row, losses in zip(rows, losses_by_epoch, strict=True):
        expected = float((torch.tensor(losses) * sizes).sum() / sizes.sum())  # by batch size
        assert row["train/loss_epoch"] == pytest.approx(expected, rel=1e-5)
        assert row["train/loss_since_eval"] == pytest.approx(expected, rel=1e-5)  # 1 eval/epoch
        assert row["train/loss_step"] == pytest.approx(losses[-1])
        assert 0.0 <= row["train/error"] <= 100.0
        assert ("train/penalty" in row) == (regularizer == "l2")
    assert rows[1]["train/loss_epoch"] < rows[0]["train/loss_epoch"]


def test_loss_since_eval_covers_the_updates_between_evaluations(tmp_path):
    """Zhang et al. Fig. 1a's running average: one mean per evaluation, here every 5 updates."""
    rows, (losses,), sizes = _fit(tmp_path, "none", max_epochs=1, val_check_interval=5)
    losses = torch.tensor(losses)
    assert [row["step"] for row in rows] == [5, 10, 15]
    for row, part in zip(rows, (slice(0, 5), slice(5, 10), slice(10, 15)), strict=True):
        expected = float((losses[part] * sizes[part]).sum() / sizes[part].sum())
        assert row["train/loss_since_eval"] == pytest.approx(expected, rel=1e-5)
