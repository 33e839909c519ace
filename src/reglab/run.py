"""Runs: build a stack of members from their configs, train it, write each one's summary.

``run(cfg, out_dir)`` is one ``reglab-train`` run: a stack of one. ``run_stack(jobs)``
trains several compatible jobs of a sweep at once (``launcher=stacked``). Both take the
same path (:mod:`reglab.training`); a member's result does not depend on its stack.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException

from reglab import timing
from reglab.callbacks import MemberRuns, StepsBar, _limits
from reglab.classifier import StackedClassifier
from reglab.data import DataError, TensorDataModule, sources
from reglab.data.stack import StackDataModule
from reglab.lifecycle import failed, prepare
from reglab.load import input_spec
from reglab.member import Job, Member
from reglab.models.stack import StackError
from reglab.progress import bar_allowed, no_bar, quiet_job_console
from reglab.resolvers import register
from reglab.signals import Signals
from reglab.summary import COMPLETED, FAILED, RUNNING_ELSEWHERE, is_elsewhere
from reglab.validation import ConfigError

log = logging.getLogger("reglab")
# Lightning's console: no banners (GPU/TPU available, tips) and no notes on the endless,
# fetched-in-step training batches that stacks use on purpose (StackDataModule).
logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
for note in ("You are using the `dataloader_iter`", "Found `dataloader_iter`", ".*LeafSpec"):
    warnings.filterwarnings("ignore", message=note)

# Importing Lightning sets this, which turns torch.optim's per-step CUDA check into an
# uncached NVML query (~0.2 ms a step). reglab forks no DataLoader workers.
os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


class RunFailed(RuntimeError):
    """Training ended without a result; ``status`` is ``diverged`` or ``interrupted``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class StackOutOfMemory(MemoryError):
    """The stack does not fit on its device; smaller stacks resume from the checkpoints."""


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """Train one configured model (a stack of one); returns its summary.

    A completed summary already in ``out_dir`` means the job is done: it is returned
    untouched. A ``last.ckpt`` there means an earlier attempt was cut off: training
    resumes from it. Both only while the config is unchanged (:mod:`reglab.rerun`). A job
    another process trains is skipped (:mod:`reglab.locks`): in a sweep its summary says
    ``running elsewhere``, a single run ends with that error.
    """
    sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if sweep:  # the sweep prints a line per job (reglab.progress); the job's go to train.log
        quiet_job_console()
        if not str(HydraConfig.get().launcher.get("_target_", "")).endswith("BasicLauncher"):
            no_bar()  # a worker process: bars of parallel jobs would garble the console
    job = Job(cfg, Path(out_dir), _overrides(), _choices())
    summary = run_stack([job], hydra_logs=HydraConfig.initialized(), record_failures=False)[0]
    if is_elsewhere(summary["status"]):
        if sweep:
            return summary
        raise RunFailed(RUNNING_ELSEWHERE, summary["error"])
    if summary["status"] == FAILED:  # bad data or config: recorded, then one line
        raise DataError(summary["error"])
    if summary["status"] != COMPLETED:
        raise RunFailed(summary["status"], summary.get("error", summary["status"]))
    return summary


def run_stack(
    jobs: list[Job], hydra_logs: bool = False, record_failures: bool = True
) -> list[dict]:
    """Train ``jobs`` as one stack; each writes its own summary; returns them in order.

    A member that fails (bad config or data, divergence) is recorded in its own summary
    and does not stop the others. Members whose batches would differ in size at some
    step (a training-set size that is not a multiple of the batch size, at another
    position in its epoch) train in stacks of their own, one after another.
    """
    register()  # the jobs' configs may use reglab's resolvers (a worker process, a notebook)
    summaries: dict[int, dict] = {}
    todo: list[tuple[int, Member]] = []
    timing.start()  # summary.json's "timing": where the stack's time goes (reglab.timing)
    try:
        for i, job in enumerate(jobs):
            member = prepare(job, record_failures)
            if isinstance(member, dict):
                summaries[i] = member
            else:
                member.hydra_logs = hydra_logs
                todo.append((i, member))
        if todo:
            _configure_torch(todo[0][1].cfg)
            with timing.phase("data"):
                loaded = _load_data(todo, summaries, record_failures)
            for n, group in enumerate(_phase_groups(loaded)):
                if n:  # the next stack's own clock
                    timing.end()
                    timing.start()
                summaries |= _train(group)
    finally:  # done with these jobs (or failed): another process may take them
        timing.end()
        for _, m in todo:
            m.lock.release()
    return [summaries[i] for i in range(len(jobs))]


#: Trainer keys reglab applies per member (its cadence, limits, clipping) or maps to
#: Lightning's (precision tf32); every other key goes to the Trainer as it is.
PER_MEMBER_TRAINER_KEYS = (
    "max_epochs", "max_steps", "val_check_interval", "check_val_every_n_epoch",
    "gradient_clip_val", "gradient_clip_algorithm",
)  # fmt: skip


def build_trainer(cfg: DictConfig, callbacks: list, logger, max_steps: int, root: Path):
    """Lightning's Trainer from ``cfg.trainer`` (Hydra instantiates its ``_target_``).

    Members have their own epochs, limits and evaluations (:class:`reglab.callbacks.
    MemberRuns` applies the keys of :data:`PER_MEMBER_TRAINER_KEYS` with Lightning's
    rules to each); the Trainer runs until the last member ends (at most ``max_steps``).
    """
    t = cfg.trainer
    kwargs = {k: t[k] for k in t if k not in PER_MEMBER_TRAINER_KEYS and not k.startswith("_")}
    precision = str(t.get("precision", "32-true"))
    kwargs["precision"] = "32-true" if precision == "tf32" else precision
    kwargs["enable_progress_bar"] = bool(t.get("enable_progress_bar", True)) and bar_allowed()
    if str(t.get("devices", 1)) == "auto":  # Lightning's "auto" is every GPU: a run uses one
        kwargs["devices"] = 1
    if t.get("barebones"):  # Lightning's speed floor: no Trainer logger, bar or log cadence
        kwargs |= {"enable_progress_bar": False, "log_every_n_steps": None}
        logger = False  # each member's own loggers still get its evaluations (MemberRuns)
    if kwargs["enable_progress_bar"] and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks = [*callbacks, StepsBar()]
    kwargs |= {
        "callbacks": callbacks,
        "logger": logger,
        "max_epochs": -1,
        "max_steps": max_steps,
        "limit_val_batches": 0,  # members evaluate at their own cadence (MemberRuns)
        "num_sanity_val_steps": 0,
        "enable_checkpointing": False,  # each member's own last.ckpt (MemberRuns)
        "default_root_dir": str(t.get("default_root_dir") or root),
    }
    return instantiate(OmegaConf.create({"_target_": t._target_}), **kwargs)


def _configure_torch(cfg: DictConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.trainer.get("deterministic"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if str(cfg.trainer.get("precision")) == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


def _load_data(
    todo: list[tuple[int, Member]], summaries: dict, record: bool
) -> list[tuple[int, Member, TensorDataModule]]:
    """Each member's data from the files read once; a member whose data fails is recorded."""
    first = todo[0][1].cfg.data
    try:
        raw = sources.load(first.name, first.root, first.download)
    except DataError as error:
        for i, m in todo:
            summaries[i] = failed(m.job, str(error), record)
        return []
    loaded, prepared = [], None
    for i, m in todo:
        try:
            dm: TensorDataModule = instantiate(
                m.cfg.data, corruption=instantiate(m.cfg.corruption), seed=m.cfg.seed
            )
            prepared = prepared or dm.prepare(raw)
            loaded.append((i, m, dm.load(prepared)))
            m.input_spec = input_spec(dm)
        except DataError as error:
            summaries[i] = failed(m.job, str(error), record)
    for entry in loaded:
        entry[2].prepared = prepared
    return loaded


def _phase_groups(loaded):
    """Members whose batch sizes agree at every step, in groups (see :func:`run_stack`)."""
    groups: dict[object, list] = {}
    for entry in loaded:
        _, m, dm = entry
        n, b = len(dm.splits["train"]), dm.batch_size
        key = "even" if n % b == 0 else (n, m.step % -(-n // b))
        groups.setdefault(key, []).append(entry)
    return list(groups.values())


def _train(group) -> dict[int, dict]:
    """Build the stack of ``group`` (a LightningModule, its data, reglab's callbacks) and
    let Lightning's Trainer fit it to the end of every member."""
    members = [m for _, m, _ in group]
    modules = [dm for _, _, dm in group]
    cfg = members[0].cfg
    info = {"id": _stack_id(members), "size": len(members)}
    callbacks = [instantiate(spec) for spec in (cfg.get("callbacks") or {}).values()]
    runs = [c for c in callbacks if isinstance(c, MemberRuns)]
    if len(runs) != 1:
        raise ConfigError("callbacks: reglab-train needs exactly one reglab.callbacks.MemberRuns")
    try:
        module = StackedClassifier(
            [m.config for m in members], modules[0].input_shape, modules[0].num_classes
        )
        data = StackDataModule(modules, modules[0].prepared)
        for m in members:
            start = f"from step {m.step}" if m.step else "from scratch"
            m.note("training %s in stack %s of %d member(s)", start, info["id"], len(members))
            with timing.phase("write"):
                m.open_loggers()
        # a stack of one is an ordinary Lightning run: its loggers are the Trainer's too
        logger = members[0].loggers if len(members) == 1 else False
        steps = max(_steps_left(m, dm) for m, dm in zip(members, modules, strict=True))
        trainer = build_trainer(cfg, callbacks, logger, steps, members[0].out_dir)
        with Signals() as signals:
            runs[0].attach(members, info, cfg.trainer, signals)
            # SIGTERM: every member saved its checkpoint and wrote its summary
            with contextlib.suppress(SIGTERMException):
                trainer.fit(module, datamodule=data)
    except torch.OutOfMemoryError as error:  # the launcher retries in smaller stacks
        for m in members:
            m.close_loggers({})
        raise StackOutOfMemory(str(error).splitlines()[0]) from None
    except (StackError, ValueError) as error:
        for m in members:
            m.close_loggers({})
        message = str(error).splitlines()[0]
        return {i: failed(m.job, message, True) for i, m, _ in group}
    by_dir = {str(m.out_dir): i for i, m, _ in group}
    return {by_dir[d]: s for d, s in runs[0].summaries.items()}


def _steps_left(m: Member, dm: TensorDataModule) -> int:
    """Steps member ``m`` has left by its own limits (the Trainer's ``max_steps``)."""
    max_steps, max_epochs = _limits(m.cfg.trainer)
    nb = -(-len(dm.splits["train"]) // dm.batch_size)
    limits = [max_steps] if max_steps > 0 else []
    if max_epochs is not None:
        limits.append(max_epochs * nb)
    return max(1, min(limits) - m.step) if limits else -1


def _stack_id(members: list[Member]) -> str:
    import hashlib

    names = ",".join(sorted(str(m.out_dir) for m in members))
    return hashlib.sha1(names.encode()).hexdigest()[:8]


def _overrides() -> list[str]:
    """The command-line overrides of this job (its sweep point)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _choices() -> dict[str, str]:
    """The option chosen in each config group, e.g. {"corruption": "random_labels"}."""
    if not HydraConfig.initialized():
        return {}
    return {k: v for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
