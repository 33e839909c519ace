"""reglab.optim under PyTorch Lightning: manual optimization and the LearningRateMonitor."""

from __future__ import annotations

import csv
import warnings

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from reglab.optim import MemberSGD

LRS, MOMENTA, RETUNED = [0.1, 0.05, 0.01], [0.9, 0.0, 0.5], [0.2, 0.05, 0.03]


class Stacked(pl.LightningModule):
    """K affine maps trained at once, each member on its own share of the loss."""

    def __init__(self, members: int = 3, closure: bool = False, scheduler: bool = False):
        super().__init__()
        self.automatic_optimization = False
        self.closure, self.scheduler = closure, scheduler
        gen = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(members, 4, 2, generator=gen))
        self.b = nn.Parameter(torch.zeros(members, 2))

    def forward(self, x):
        return torch.baddbmm(self.b.unsqueeze(1), x.expand(len(self.w), -1, -1), self.w)

    def loss(self, batch):
        x, y = batch
        return ((self(x) - y) ** 2).mean(dim=(1, 2)).sum()

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()  # Lightning's wrapper: its attributes are the optimizer's
        if batch_idx == 2 and len(self.w) == 3:
            opt.lr = RETUNED

        def closure():
            opt.zero_grad()
            loss = self.loss(batch)
            self.manual_backward(loss)
            return loss

        loss = opt.step(closure=closure) if self.closure else (closure(), opt.step())[0]
        if self.scheduler:
            self.lr_schedulers().step()
        return loss

    def configure_optimizers(self):
        k = len(self.w)
        opt = MemberSGD(self.parameters(), lr=LRS[:k], momentum=MOMENTA[:k])
        if not self.scheduler:
            return opt
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


def loader():
    gen = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(40, 4, generator=gen), torch.randn(40, 2, generator=gen))
    return DataLoader(data, batch_size=8)


def trainer(**kwargs) -> pl.Trainer:
    settings = dict(
        max_steps=5,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    return pl.Trainer(**settings | kwargs)


def fit(module: Stacked, **kwargs) -> pl.Trainer:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        # the monitor copies each logged value with torch.tensor(): here a (1,) lr tensor
        warnings.filterwarnings("ignore", ".*To copy construct from a tensor.*")
        t = trainer(**kwargs)
        t.fit(module, loader())
    return t


@pytest.mark.parametrize("closure", [False, True])
def test_manual_optimization_trains_a_stack_as_a_plain_loop(closure):
    module = fit(Stacked(closure=closure)).lightning_module
    opt = module.optimizers().optimizer
    assert isinstance(opt, MemberSGD) and opt.steps == [5, 5, 5] and opt.lr == RETUNED
    assert module.trainer.global_step == 5

    reference = Stacked()
    ref = reference.configure_optimizers()
    for t, batch in enumerate(loader()):
        if t == 2:
            ref.set_hyperparameters(lr=RETUNED)
        ref.zero_grad()
        reference.loss(batch).backward()
        ref.step()
    for p, q in zip(module.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("scheduler", [False, True])
def test_learning_rate_monitor_logs_the_member_lr(tmp_path, scheduler):
    """K=1: the monitor reads param_groups[0]["lr"], a (1,) tensor; the CSV holds its float."""
    logger = CSVLogger(tmp_path, name="lr", version=0)
    monitor = LearningRateMonitor(logging_interval="step", log_momentum=True)
    module = Stacked(members=1, scheduler=scheduler)
    fit(module, logger=logger, callbacks=[monitor], log_every_n_steps=1)
    with open(tmp_path / "lr" / "version_0" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    lrs = [float(r["lr-MemberSGD"]) for r in rows]
    expected = [0.1 * 0.5**t for t in range(5)] if scheduler else [0.1] * 5
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert [float(r["lr-MemberSGD-momentum"]) for r in rows] == [0.9] * 5
    assert module.optimizers().optimizer.lr == pytest.approx([0.1 * 0.5**5 if scheduler else 0.1])
