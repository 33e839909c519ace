"""The LightningModule: cross-entropy + penalty, post-step projections, metrics in %."""

from __future__ import annotations

import math
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
        self.train_sums: torch.Tensor | None = None  # see _accumulate
        self.last_train_loss: torch.Tensor | None = None
        self.penalised = regularizer.penalty(self.reg_params) is not None  # log train/penalty

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        data_loss = F.cross_entropy(logits, y)
        penalty = self.regularizer.penalty(self.reg_params)
        loss = data_loss if penalty is None else data_loss + penalty
        step = self.global_step
        if step % self.divergence_check_every == 0 and not torch.isfinite(loss):
            raise Diverged(f"loss is {float(loss)} at step {step}")
        self._accumulate(data_loss, logits, y, penalty)
        if (step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", data_loss, on_step=True, on_epoch=False)
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._log_epoch_means()
        return loss

    # -- training metrics: summed on the device, read once an epoch / evaluation ----------
    # ``self.log`` costs a fraction of a millisecond per call, as much as a small net's whole
    # step; sums kept on the device cost a few tensor ops and no host synchronisation.
    # Row EPOCH sums over the current epoch, row SINCE_EVAL since the previous evaluation;
    # columns: loss·n, wrong, penalty·n, n.
    EPOCH, SINCE_EVAL = 0, 1

    def _accumulate(self, data_loss, logits, labels, penalty) -> None:
        if self.train_sums is None:
            self.train_sums = torch.zeros(2, 4, device=data_loss.device)
        n = len(labels)
        wrong = (logits.detach().argmax(dim=1) != labels).sum()
        extra = torch.zeros_like(data_loss) if penalty is None else penalty.detach()
        self.train_sums.add_(  # one row, added to both
            torch.stack(
                [data_loss.detach() * n, wrong.float(), extra * n, torch.full_like(data_loss, n)]
            )
        )
        self.last_train_loss = data_loss.detach()

    def _take_sums(self, row: int) -> list[float] | None:
        """The sums of ``row`` (None before any update), which then start again from 0."""
        if self.train_sums is None:
            return None
        sums = self.train_sums[row].tolist()
        self.train_sums[row].zero_()
        return sums

    def _log_epoch_means(self) -> None:
        """The epoch's mean training loss, error % and penalty; a NaN mean is divergence."""
        loss, wrong, penalty, n = self._take_sums(self.EPOCH)
        if not math.isfinite(loss):
            raise Diverged(f"mean training loss is {loss / n} in epoch {self.current_epoch}")
        means = {"train/loss_epoch": loss / n, "train/error": 100.0 * wrong / n}
        if self.penalised:
            means["train/penalty"] = penalty / n
        self.log_dict(means, on_step=False, on_epoch=True, sync_dist=True)

    def take_loss_since_eval(self) -> float | None:
        """Mean training loss over the updates since the previous call (None if there were
        none): the running average Zhang et al. plot in Fig. 1a, one value per evaluation."""
        sums = self._take_sums(self.SINCE_EVAL)
        return sums[0] / sums[3] if sums and sums[3] else None

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
        checkpoint["train_sums"] = self.train_sums  # a run resumed mid-epoch keeps its means

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.model.masks.load_state_dict(checkpoint.get("dropout_masks", {}))
        self.train_sums = checkpoint.get("train_sums")
