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


@pytest.mark.parametrize("regularizer", ["none", "l2"])
def test_epoch_means_equal_the_mean_of_the_step_losses(tmp_path, regularizer):
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
        max_epochs=2,
        logger=False,
        callbacks=[steps, history],
        enable_progress_bar=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    rows = history.history
    assert [row["epoch"] for row in rows] == [0, 1]
    n = len(data.splits["train"])
    sizes = torch.tensor([100] * (n // 100) + ([n % 100] if n % 100 else []), dtype=torch.float)
    for row, losses in zip(rows, steps.losses, strict=True):
        expected = float((torch.tensor(losses) * sizes).sum() / n)  # weighted by batch size
        assert row["train/loss_epoch"] == pytest.approx(expected, rel=1e-5)
        assert row["train/loss_step"] == pytest.approx(losses[-1])
        assert 0.0 <= row["train/error"] <= 100.0
        assert ("train/penalty" in row) == (regularizer == "l2")
    assert rows[1]["train/loss_epoch"] < rows[0]["train/loss_epoch"]
