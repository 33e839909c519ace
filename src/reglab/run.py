"""One run: build everything from the config, train, evaluate, write ``summary.json``."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from reglab.callbacks import HistoryRecorder, MomentumRamp, ResumableCheckpoint
from reglab.data import TensorDataModule
from reglab.evaluation import activation_probe, evaluate
from reglab.module import Classifier, Diverged
from reglab.regularizers import zero_fraction
from reglab.rerun import changed_settings, set_aside
from reglab.seeding import Stream, stream_seed
from reglab.summary import SUMMARY, git_commit, read_summary, versions, write_json_atomic

log = logging.getLogger("reglab")
CHECKPOINTS = "checkpoints"

# Importing Lightning sets this, which turns torch.optim's per-step CUDA check into an
# uncached NVML query (~0.2 ms a step). reglab forks no DataLoader workers, so it is not
# needed.
os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


class RunFailed(RuntimeError):
    """Training ended without a result; ``status`` is ``diverged`` or ``interrupted``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def build_data(cfg: DictConfig) -> TensorDataModule:
    """Load, hold out, subset and corrupt the data (raises DataError before training)."""
    corruption = instantiate(cfg.corruption)
    return instantiate(cfg.data, corruption=corruption, seed=cfg.seed).load()


def build_model(cfg: DictConfig, data: TensorDataModule) -> torch.nn.Module:
    torch.manual_seed(stream_seed(cfg.seed, Stream.INIT))
    dropout = instantiate(cfg.dropout)
    model = instantiate(
        cfg.model,
        input_shape=data.input_shape,
        num_classes=data.num_classes,
        dropout=dropout,
        seed=cfg.seed,
    )
    return torch.compile(model) if cfg.compile else model


def build_callbacks(
    cfg: DictConfig, out_dir: Path, data: TensorDataModule, config: dict | None = None
) -> list[pl.Callback]:
    """The run's callbacks; ``config`` is ``cfg`` resolved (resolved here if not given),
    which ``last.ckpt`` records."""
    callbacks: list[pl.Callback] = [HistoryRecorder()]
    if cfg.trainer.get("enable_progress_bar", True):  # Rich's bar redraws at every step
        callbacks.append(TQDMProgressBar(refresh_rate=50))
    if cfg.checkpoint.enabled:
        last = out_dir / CHECKPOINTS / "last.ckpt"
        if config is None:
            config = OmegaConf.to_container(cfg, resolve=True)
        callbacks.append(ResumableCheckpoint(last, cfg.checkpoint.every_n_steps, config))
        if cfg.checkpoint.keep and len(data.splits["val"]):
            callbacks.append(
                ModelCheckpoint(
                    dirpath=out_dir / CHECKPOINTS,
                    filename="best",
                    monitor="val/error",
                    mode="min",
                    save_top_k=1,
                )
            )
    if cfg.momentum_ramp:
        callbacks.append(MomentumRamp(**cfg.momentum_ramp))
    if cfg.stop_when_fit:
        monitor = "train_eval/error" if data.eval_train_set else "train/error"
        callbacks.append(
            EarlyStopping(
                monitor=monitor,
                mode="min",
                patience=10**9,
                stopping_threshold=cfg.fit_threshold + 1e-9,
                check_on_train_epoch_end=False,
            )
        )
    return callbacks


def final_metrics(module: Classifier, data: TensorDataModule, mc_samples: int) -> dict:
    """Errors (%) and losses of the final weights on every split, in eval mode."""
    model = module.model
    metrics: dict[str, float | int | None] = {}
    for split in ("train", "val", "test"):
        if len(data.splits[split]):
            result = evaluate(model, data.eval_batches(split), data.to_input)
            metrics[f"{split}_error"], metrics[f"{split}_loss"] = result["error"], result["loss"]
        else:
            metrics[f"{split}_error"] = metrics[f"{split}_loss"] = None
    if mc_samples:
        mc = evaluate(model, data.eval_batches("test"), data.to_input, mc_samples)
        metrics["test_error_mc"], metrics["test_loss_mc"] = mc["error"], mc["loss"]
    metrics["zero_weight_fraction"] = zero_fraction(module.reg_params)
    metrics["label_noise_fraction"] = data.label_noise
    device = next(model.parameters()).device
    probe = data.splits["test"].images[:1000].to(device)
    metrics |= activation_probe(model, data.to_input(probe))
    return metrics


def steps_to_fit(history: list[dict], threshold: float) -> int | None:
    """First evaluated step at which the training error (%) was <= ``threshold``."""
    for row in history:
        error = row.get("train_eval/error", row.get("train/error_epoch", row.get("train/error")))
        if error is not None and error <= threshold:
            return int(row["step"])
    return None


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Train the configured model; returns the summary also written to ``out_dir``.

    A completed summary already in ``out_dir`` means the job is done: it is returned
    untouched. A ``last.ckpt`` there means an earlier attempt was cut off: training
    resumes from it. Both only while the config is unchanged: a run of another config is
    moved aside (:mod:`reglab.rerun`) and the job starts afresh.
    """
    config = OmegaConf.to_container(cfg, resolve=True)
    last = out_dir / CHECKPOINTS / "last.ckpt"
    previous = read_summary(out_dir)
    saved = _read_checkpoint(last)
    recorded = (previous or {}).get("config") or (saved or {}).get(ResumableCheckpoint.CONFIG_KEY)
    changes = changed_settings(recorded, config)
    if changes:
        moved = set_aside(out_dir)
        shown = "; ".join(changes[:3]) + (f"; {len(changes) - 3} more" if len(changes) > 3 else "")
        log.warning(
            "%s: the config changed since its earlier run (%s); that run moved to %s",
            out_dir,
            shown,
            moved,
        )
        previous = saved = None
    if previous and previous.get("status") == "completed":
        log.info("%s: already completed, skipping", out_dir)
        return previous
    started = time.time()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    pl.seed_everything(cfg.seed, workers=False, verbose=False)
    data = build_data(cfg)
    model = build_model(cfg, data)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    probe = data.splits["test"].images[: cfg.probe_size] if cfg.probe_size else None
    module = Classifier(
        model,
        instantiate(cfg.optimizer),
        instantiate(cfg.regularizer),
        data.eval_names(),
        scheduler=scheduler,
        probe_images=probe,
    )
    callbacks = build_callbacks(cfg, out_dir, data, config)
    history: HistoryRecorder = callbacks[0]
    loggers = [instantiate(c) for c in cfg.logger.values()] if cfg.get("logger") else []
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(out_dir),
        # Without this Lightning adds its own ModelCheckpoint, which writes checkpoints
        # into the logger's folder while training and leaves the last one there.
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
    )
    summary = {
        "status": "failed",
        "name": cfg.name,
        "overrides": _overrides(),
        "choices": _choices(),
        "seed": cfg.seed,
        "config": config,
        "git_commit": git_commit(),
        "versions": versions(),
        "resumed_from_step": int(saved["global_step"]) if saved else None,
    }
    metrics: dict = {}
    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.exists() else None)
        if trainer.global_step not in history.rows:  # stopped mid-epoch (max_steps)
            trainer.validate(module, datamodule=data, verbose=False)
        metrics = final_metrics(module, data, cfg.dropout.mc_samples)
        if not math.isfinite(metrics["train_loss"]):
            raise Diverged(f"training loss is {metrics['train_loss']} after training")
        summary["status"] = "completed"
    except Diverged as diverged:
        summary["status"], summary["error"] = "diverged", str(diverged)
    except SIGTERMException:
        summary["status"] = "interrupted"
        summary["error"] = f"interrupted at step {trainer.global_step}; rerun to resume"
    except Exception as error:
        summary["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        metrics |= {
            "steps": trainer.global_step,
            "epochs": trainer.current_epoch,
            "steps_to_fit": steps_to_fit(history.history, cfg.fit_threshold),
        }
        summary |= {
            "metrics": metrics,
            "history": history.history,
            "wall_time_s": round(time.time() - started, 3),
        }
        if trainer.is_global_zero:  # under DDP every rank gets here with the same result
            write_json_atomic(out_dir / SUMMARY, summary)
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.finish()  # one W&B run per job, also when jobs share a process
    if summary["status"] != "completed":
        raise RunFailed(summary["status"], summary["error"])
    if not cfg.checkpoint.keep and trainer.is_global_zero:
        shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
    log.info(
        "test error %.2f %% (train %.2f %%) → %s",
        metrics["test_error"],
        metrics["train_error"],
        out_dir / SUMMARY,
    )
    return summary


def _read_checkpoint(path: Path) -> dict | None:
    """A ``last.ckpt`` memory-mapped (its step and recorded config are read, not its
    tensors), or None if there is none."""
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)


def _overrides() -> list[str]:
    """The command-line overrides of this job (its sweep point)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _choices() -> dict[str, str]:
    """The option chosen in each config group, e.g. {"corruption": "random_labels"}."""
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
