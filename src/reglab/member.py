"""One member of a stack: its job folder, evaluation history, loggers, checkpoint and summary.

Everything a run writes comes from here, whether the run trained alone (a stack of one)
or beside other jobs: ``summary.json`` (the one record reports read), ``train.log`` lines,
the loggers' files (each member its own CSV / TensorBoard / W&B run, with its config as
hyperparameters and its final metrics) and ``checkpoints/last.ckpt``, which holds this
member alone, so that it can resume in a stack of any other make-up.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from reglab import dotted, timing
from reglab.summary import COMPLETED, RUNNING, SUMMARY, git_commit, versions, write_json_atomic

log = logging.getLogger("reglab")
CHECKPOINTS = "checkpoints"
#: The checkpoint key holding the run's resolved config: a run killed before it wrote a
#: summary can still be told apart from a rerun of another config (reglab.rerun).
CONFIG_KEY = "reglab_config"
FORMAT_KEY = "reglab_member"  # 2: Lightning-format member checkpoints (older ones are ignored)
FORMAT = 2


@dataclass
class Job:
    """A job to train: its composed config and folder, and what Hydra knew of it."""

    cfg: DictConfig
    out_dir: Path
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)


class Member:
    """The per-run side of training: what one job records while the stack trains it."""

    def __init__(self, job: Job, config: dict, checkpoint: dict | None) -> None:
        self.job = job
        self.cfg = job.cfg
        self.config = config  # resolved
        self.out_dir = Path(job.out_dir)
        self.started = time.time()
        self.step = 0
        self.status = RUNNING
        self.error: str | None = None
        self.rows: dict[int, dict[str, float]] = {}
        self.epoch_means: dict[str, float] = {}  # the last finished epoch's training means
        self.resumed_from_step = None
        self.loggers: list = []
        self.saved = checkpoint
        self.hydra_logs = False  # set by reglab.run when Hydra writes this job's train.log
        self.input_spec: dict = {}  # what its inputs went through (reglab.load.input_spec)
        self.lock = None  # its reglab.locks.JobLock, held while this process trains it
        if checkpoint is not None:
            self.step = self.resumed_from_step = int(checkpoint["step"])
            self.rows = {int(row["step"]): row for row in checkpoint["history"]}
            self.epoch_means = dict(checkpoint["epoch_means"])

    @property
    def name(self) -> str:
        return self.out_dir.name

    def note(self, message: str, *args) -> None:
        """A line of this run's ``train.log`` (Hydra's log file when Hydra launched the job
        itself; written here for the members of a stack, which share one process)."""
        log.info(message, *args)
        if not self.hydra_logs:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with (self.out_dir / "train.log").open("a") as f:
                f.write(f"[{stamp}][reglab][INFO] - {message % args if args else message}\n")

    # -- history -----------------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, float]]:
        return [self.rows[step] for step in sorted(self.rows)]

    def record(self, epoch: int, values: dict[str, float]) -> dict[str, float]:
        """One evaluation's row at the member's current step (merged into an existing row)."""
        row = self.rows.setdefault(self.step, {"step": self.step})
        row["epoch"] = epoch
        row |= self.epoch_means | values
        self.log_metrics({k: v for k, v in row.items() if k not in ("step", "epoch")})
        return row

    # -- loggers -----------------------------------------------------------------------
    def open_loggers(self) -> None:
        """The config's loggers (``reglab.run`` points them at this member's folder), with the
        resolved config as hyperparameters."""
        specs = self.cfg.get("logger") or {}
        for spec in specs.values():
            if "Wandb" in str(spec.get("_target_", "")):
                logger = instantiate(spec, experiment=self._wandb_run(spec))
            else:
                logger = instantiate(spec)
            logger.log_hyperparams(dotted.flatten(self.config))
            self.loggers.append(logger)

    def _wandb_run(self, spec):
        """This member's own W&B run: jobs that share a process must not share a run
        (Lightning's WandbLogger would reuse the process's current one)."""
        import wandb

        keys = ("project", "entity", "group", "job_type", "name", "tags", "mode")
        init = {k: spec[k] for k in keys if spec.get(k) is not None}
        init["tags"] = list(init.get("tags", []))
        return wandb.init(dir=str(spec.save_dir), reinit="create_new", **init)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step=self.step if step is None else step)

    def close_loggers(self, metrics: dict[str, Any]) -> None:
        """Final metrics as each logger's run summary, then finish (one W&B run per job)."""
        finals = {f"final/{k}": v for k, v in metrics.items() if isinstance(v, int | float)}
        for logger in self.loggers:
            try:
                kind = type(logger).__name__
                if "Wandb" in kind:
                    logger.experiment.summary.update(finals)
                elif "TensorBoard" in kind:  # the HPARAMS tab: config beside final metrics
                    logger.log_hyperparams(dotted.flatten(self.config), metrics=finals)
                else:
                    logger.log_metrics(finals, step=self.step)
                logger.finalize("success" if self.status == COMPLETED else self.status)
            finally:
                if "Wandb" in type(logger).__name__:
                    logger.experiment.finish()
        self.loggers = []

    # -- checkpoint --------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINTS / "last.ckpt"

    def save_checkpoint(self, state: dict[str, Any], module, extra: dict[str, Any]) -> None:
        """``last.ckpt``: a Lightning checkpoint of this member as a stack of one
        (``StackedClassifier.load_from_checkpoint`` reads it) plus what resuming it in any
        stack needs: weights, optimizer and schedule state, step, history, training sums.
        Written to a temporary file, then renamed (kill -9 safe)."""
        import pytorch_lightning as pl

        one = {f"net.body.{k}": v.unsqueeze(0) for k, v in state["model"].items()}
        payload = extra | {
            "pytorch-lightning_version": pl.__version__,
            "global_step": self.step,
            "epoch": 0,
            "state_dict": one,
            "hyper_parameters": {
                "configs": [self.config],
                "input_shape": list(module.hparams.input_shape),
                "num_classes": module.hparams.num_classes,
            },
            FORMAT_KEY: FORMAT,
            "member": state,
            "step": self.step,
            "history": self.history,
            "epoch_means": self.epoch_means,
            CONFIG_KEY: self.config,
        }
        self.save_file(self.checkpoint_path.name, payload)

    def save_file(self, name: str, payload: dict[str, Any]) -> None:
        """``checkpoints/<name>``, atomically."""
        path = self.out_dir / CHECKPOINTS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)

    def finished(self, state_dict: dict, keep: bool) -> None:
        """A completed run keeps its final weights (``model.pt``, :func:`reglab.load_model`);
        its checkpoints only with ``checkpoint.keep``."""
        from reglab.load import MODEL_FILE, save_model

        save_model(self.out_dir / MODEL_FILE, state_dict, self.input_spec, self.config)
        if not keep:
            shutil.rmtree(self.out_dir / CHECKPOINTS, ignore_errors=True)

    # -- summary -----------------------------------------------------------------------
    def write_summary(self, metrics: dict[str, Any], stack: dict[str, Any]) -> dict:
        summary = {
            "status": self.status,
            "name": self.cfg.name,
            "overrides": self.job.overrides,
            "choices": self.job.choices,
            "seed": self.cfg.seed,
            "meta": self.config.get("meta") or {},  # +meta.<key>=...: the user's own notes
            "config": self.config,
            "git_commit": git_commit(),
            "versions": versions(),
            "resumed_from_step": self.resumed_from_step,
            "stack": stack,
            "metrics": metrics,
            "history": self.history,
            "wall_time_s": round(time.time() - self.started, 3),
        }
        if self.error is not None:
            summary["error"] = self.error
        if (seconds := timing.snapshot()) is not None:  # its stack's phases (reglab.timing)
            summary["timing"] = seconds
        write_json_atomic(self.out_dir / SUMMARY, summary)
        return summary


def read_checkpoint(path: Path) -> dict | None:
    """A member checkpoint (None if absent or written by an older reglab)."""
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    return saved if saved.get(FORMAT_KEY) == FORMAT else None


def resolved(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)
