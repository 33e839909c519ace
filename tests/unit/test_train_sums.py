"""Training metrics are summed on the device and read once an epoch: check the sums."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config

from reglab.member import Job
from reglab.run import run_stack
from reglab.train_sums import TrainSums


def _fit(tmp_path, monkeypatch, regularizer: str, *overrides: str):
    """History rows, the per-step data losses (by epoch) and the first epoch's batch sizes
    of one digits run, read where StackedClassifier.training_step adds them to its sums."""
    steps: list[tuple[float, int]] = []
    add = TrainSums.add

    def recording(self, data_loss, wrong, penalty, n):
        steps.append((float(data_loss[0]), n))
        return add(self, data_loss, wrong, penalty, n)

    monkeypatch.setattr(TrainSums, "add", recording)
    cfg = compose_config(
        "data=digits",
        "model.hidden=[32]",
        f"regularizer={regularizer}",
        "data.batch_size=100",
        *overrides,
    )
    (summary,) = run_stack([Job(cfg, tmp_path / "run")])
    assert summary["status"] == "completed", summary.get("error")
    nb = 15  # 1,437 digits in batches of 100
    by_epoch = [steps[i : i + nb] for i in range(0, len(steps), nb)]
    sizes = torch.tensor([float(n) for _, n in steps[:nb]])
    assert sizes.tolist() == [100.0] * 14 + [37.0]
    return summary["history"], [[x for x, _ in e] for e in by_epoch], sizes


@pytest.mark.parametrize("regularizer", ["none", "l2"])
def test_epoch_means_equal_the_mean_of_the_step_losses(tmp_path, monkeypatch, regularizer):
    per_epoch = ["trainer.check_val_every_n_epoch=1", "trainer.val_check_interval=null"]
    rows, losses_by_epoch, sizes = _fit(
        tmp_path, monkeypatch, regularizer, "trainer.max_epochs=2", *per_epoch
    )
    assert [row["epoch"] for row in rows] == [0, 1]
    for row, losses in zip(rows, losses_by_epoch, strict=True):
        expected = float((torch.tensor(losses) * sizes).sum() / sizes.sum())  # by batch size
        assert row["train/loss_epoch"] == pytest.approx(expected, rel=1e-5)
        assert row["train/loss_since_eval"] == pytest.approx(expected, rel=1e-5)  # 1 eval/epoch
        assert row["train/loss_step"] == pytest.approx(losses[-1])
        assert 0.0 <= row["train/error"] <= 100.0
        assert ("train/penalty" in row) == (regularizer == "l2")
    assert rows[1]["train/loss_epoch"] < rows[0]["train/loss_epoch"]


def test_loss_since_eval_covers_the_updates_between_evaluations(tmp_path, monkeypatch):
    """Zhang et al. Fig. 1a's running average: one mean per evaluation, here every 5 updates."""
    rows, (losses,), sizes = _fit(
        tmp_path, monkeypatch, "none", "trainer.max_epochs=1", "trainer.val_check_interval=5"
    )
    losses = torch.tensor(losses)
    assert [row["step"] for row in rows] == [5, 10, 15]
    for row, part in zip(rows, (slice(0, 5), slice(5, 10), slice(10, 15)), strict=True):
        expected = float((losses[part] * sizes[part]).sum() / sizes[part].sum())
        assert row["train/loss_since_eval"] == pytest.approx(expected, rel=1e-5)
