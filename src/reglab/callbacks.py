"""Callbacks: metric history for summary.json, Srivastava's momentum ramp, resumable checkpoints."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException


class HistoryRecorder(pl.Callback):
    """Keeps every evaluation's metrics, so that reports need only ``summary.json``.

    One row per evaluated step. Lightning validates *before* ``on_train_epoch_end``, so
    a row is updated at both hooks: it then holds the epoch's training means too.
    ``train/loss_step`` is the loss of the step just taken (the module logs it to the
    loggers only every ``log_every_n_steps``), ``train/loss_since_eval`` the mean loss of
    the updates since the previous evaluation.
    """

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, float]] = {}

    @property
    def history(self) -> list[dict[str, float]]:
        return [self.rows[step] for step in sorted(self.rows)]

    def _record(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        row = self.rows.setdefault(trainer.global_step, {"step": trainer.global_step})
        row["epoch"] = trainer.current_epoch
        row |= {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        last_loss = getattr(pl_module, "last_train_loss", None)
        if last_loss is not None:
            row["train/loss_step"] = float(last_loss)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._record(trainer, pl_module)
        take = getattr(pl_module, "take_loss_since_eval", None)
        mean = take() if take else None
        if mean is not None:
            self.rows[trainer.global_step]["train/loss_since_eval"] = mean

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step in self.rows:
            self._record(trainer, pl_module)

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = {int(row["step"]): row for row in state_dict["history"]}


class MomentumRamp(pl.Callback):
    """Raise SGD momentum linearly from ``start`` to ``end`` over ``steps`` updates.

    Srivastava et al. 2014, App. A.1: momentum starting at 0.5 and increased to its final
    value (0.95–0.99) while dropout nets train, because early large momentum with noisy
    dropout gradients is unstable.
    """

    def __init__(self, start: float, end: float, steps: int) -> None:
        self.start, self.end, self.steps = start, end, max(1, steps)

    def momentum(self, step: int) -> float:
        t = min(1.0, step / self.steps)
        return self.start + t * (self.end - self.start)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        value = self.momentum(trainer.global_step)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                if "momentum" in group:
                    group["momentum"] = value
                elif "betas" in group:
                    group["betas"] = (value, group["betas"][1])


class ResumableCheckpoint(pl.Callback):
    """Keep ``last.ckpt`` current, so that the same command resumes a run cut off anywhere.

    Saved after every epoch (or every ``every_n_steps`` updates) and when a signal stops
    training. Lightning already turns SIGTERM (``kill``, SLURM's pre-emption and time
    limits) into a clean stop after the current batch; SIGINT (Ctrl-C) and SIGUSR2
    (submitit's warning before a time-out or pre-emption) are routed the same way, so a
    checkpoint never holds a half-done optimizer step. After saving on SIGUSR2, submitit's
    own handler runs: it requeues the job, which then resumes from the checkpoint. A second
    Ctrl-C stops at once. Each save goes to a temporary file that is then renamed, so a
    ``kill -9`` mid-write leaves the previous checkpoint intact.
    """

    SIGNALS = (signal.SIGINT, signal.SIGUSR2)

    #: The checkpoint key holding the run's resolved config: a run killed before it wrote a
    #: summary can still be told apart from a rerun of another config (reglab.rerun).
    CONFIG_KEY = "reglab_config"

    def __init__(
        self, path: Path, every_n_steps: int | None = None, config: dict | None = None
    ) -> None:
        self.path = Path(path)
        self.every_n_steps = every_n_steps
        self.config = config
        self._previous: dict[int, object] = {}
        self._received: int | None = None

    def save(self, trainer: pl.Trainer) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.every_n_steps:
            self.save(trainer)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.config is not None:
            checkpoint[self.CONFIG_KEY] = self.config

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def graceful(signum, frame) -> None:
            self._received = signum
            if signum == signal.SIGINT:  # a second Ctrl-C interrupts at once
                signal.signal(signal.SIGINT, signal.default_int_handler)
            trainer._signal_connector.received_sigterm = True

        self._previous = {sig: signal.signal(sig, graceful) for sig in self.SIGNALS}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, pl_module, exception: BaseException) -> None:
        previous = self._previous.get(signal.SIGUSR2)
        self._restore()
        if isinstance(exception, SIGTERMException | KeyboardInterrupt):
            self.save(trainer)
            if self._received == signal.SIGUSR2 and callable(previous):
                previous(signal.SIGUSR2, None)  # submitit: requeue this job, then exit

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(sig, handler)
        self._previous = {}
