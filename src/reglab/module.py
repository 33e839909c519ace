"""The LightningModule: cross-entropy + penalty, post-step projections, metrics in %."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from reglab.evaluation import activation_probe, error_percent
from reglab.regularizers import Regularizer, zero_fraction


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class Classifier(pl.LightningModule):
    """Trains ``model`` on cross-entropy plus the regularizer's penalty.

    After every optimizer step the regularizer's ``after_step`` (proximal ℓ1, max-norm)
    acts on the weights with the learning rate of that step. Each evaluation logs loss
    and error % of every evaluated split, the penalty, the fraction of exactly-zero
    weights and per-layer activation statistics on a fixed probe batch.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        regularizer: Regularizer,
        eval_names: list[str],
        scheduler: Callable[..., object] | None = None,
        probe_images: torch.Tensor | None = None,
        divergence_check_every: int = 50,
    ) -> None:
        super().__init__()
        self.model = model
        self.make_optimizer = optimizer
        self.make_scheduler = scheduler
        self.regularizer = regularizer
        self.reg_params = regularizer.parameters(model)
        self.eval_names = eval_names
        self.divergence_check_every = divergence_check_every
        self.register_buffer("probe_images", probe_images, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        data_loss = F.cross_entropy(logits, y)
        penalty = self.regularizer.penalty(self.reg_params)
        loss = data_loss if penalty is None else data_loss + penalty
        if self.global_step % self.divergence_check_every == 0 and not torch.isfinite(loss):
            raise Diverged(f"loss is {float(loss)} at step {self.global_step}")
        n = len(y)
        self.log("train/loss", data_loss, on_step=True, on_epoch=True, batch_size=n)
        self.log(
            "train/error", error_percent(logits, y), on_step=False, on_epoch=True, batch_size=n
        )
        if penalty is not None:
            self.log("train/penalty", penalty, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_train_epoch_end(self) -> None:
        loss = self.trainer.callback_metrics.get("train/loss_epoch")
        if loss is not None and not torch.isfinite(loss):
            raise Diverged(f"mean training loss is {float(loss)} in epoch {self.current_epoch}")

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.regularizer.after_step(self.reg_params, optimizer.param_groups[0]["lr"])

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y = batch
        logits = self.model(x)
        name = self.eval_names[dataloader_idx]
        n = len(y)
        self.log(f"{name}/loss", F.cross_entropy(logits, y), batch_size=n, add_dataloader_idx=False)
        self.log(f"{name}/error", error_percent(logits, y), batch_size=n, add_dataloader_idx=False)

    def on_validation_epoch_end(self) -> None:
        stats = {"weights/zero_fraction": zero_fraction(self.reg_params)}
        if self.probe_images is not None:
            stats |= activation_probe(
                self.model, self.trainer.datamodule.to_input(self.probe_images)
            )
        self.log_dict(stats)

    def configure_optimizers(self):
        optimizer = self.make_optimizer(params=self.model.parameters())
        if self.make_scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.make_scheduler(optimizer), "interval": "epoch"},
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["dropout_masks"] = self.model.masks.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.model.masks.load_state_dict(checkpoint.get("dropout_masks", {}))
