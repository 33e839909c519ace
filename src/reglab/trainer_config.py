"""The ``trainer`` and ``callbacks`` groups, checked before torch or Lightning is imported.

Hydra instantiates ``trainer._target_`` (Lightning's Trainer) with the group's keys, and
each entry of ``callbacks`` (one callback each, ``{_target_: ..., <its arguments>}``). One
Trainer fits a whole stack of members, each with its own optimizer step, limits,
evaluations and checkpoints (:class:`reglab.callbacks.MemberRuns`), so a few of Lightning's
keys cannot work; each is refused here with the reason and what is allowed, every other
key of ``Trainer.__init__`` (:data:`~reglab.config_keys.TRAINER_PARAMS`) goes to the
Trainer. The accelerators this machine has are read from the system (an NVIDIA driver,
Apple silicon), never from torch, so a refusal stays a fraction of a second.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import platform
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reglab.config_keys import TARGET_KEYS, TRAINER_PARAMS
from reglab.validation import ConfigError, _check_keys, _is_int, _is_num, _plain, _shown

LIGHTNING_TRAINER = "pytorch_lightning.Trainer"
MEMBER_RUNS = "reglab.callbacks.MemberRuns"
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
PRECISIONS = ("32-true", "32", "64-true", "16-mixed", "16-true", "bf16-mixed", "bf16-true", "tf32")
#: Lightning's "true" precisions other than 32: they cast the module, and Lightning casts the
#: batches it fetches, but a stack's batches come straight from its data (refused for now).
UNCONVERTED = ("64-true", "16-true", "bf16-true")
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")

_ONE_DEVICE = (
    "a run trains on one device; to fill devices with many jobs at once: launcher=stacked "
    "(this machine) or launcher=stacked_slurm (a cluster)"
)
_LIMITS = "members have their own limits: trainer.max_steps, trainer.max_epochs, stop_when_fit"
_PER_MEMBER_CHECKPOINTS = "checkpoints are per member: checkpoint.*"

Rule = tuple[Callable[[Any], bool], str, str]  # ok, what is allowed, why
#: Keys whose value is checked (max_epochs and max_steps: reglab.validation.RULES).
TRAINER_RULES: dict[str, Rule] = {
    "accelerator": (
        lambda v: v in ACCELERATORS,
        "cpu, gpu, cuda, mps or auto",
        "reglab trains on a CPU, an NVIDIA GPU or Apple silicon",
    ),
    "devices": (lambda v: v in ("1", "auto") or (_is_int(v) and v == 1), "1 or auto", _ONE_DEVICE),
    "strategy": (lambda v: v in (None, "auto"), "auto", _ONE_DEVICE),
    "num_nodes": (lambda v: _is_int(v) and v == 1, "1", _ONE_DEVICE),
    "precision": (lambda v: str(v) in PRECISIONS, ", ".join(PRECISIONS), ""),
    "accumulate_grad_batches": (
        lambda v: _is_int(v) and v == 1,
        "1",
        "reglab steps every member on every batch (manual optimization); a larger batch: "
        "data.batch_size",
    ),
    "gradient_clip_val": (
        lambda v: v is None or (_is_num(v) and v > 0),
        "null or a number > 0",
        "reglab clips each member's gradients alone",
    ),
    "gradient_clip_algorithm": (lambda v: v in (None, "norm", "value"), "norm or value", ""),
    "num_sanity_val_steps": (
        lambda v: _is_int(v) and v == 0,
        "0",
        "members evaluate at their own cadence: trainer.val_check_interval",
    ),
    "sync_batchnorm": (
        lambda v: v in (None, False),
        "false",
        "one device: each member keeps its own BatchNorm statistics",
    ),
    "val_check_interval": (
        lambda v: v is None or (_is_int(v) and v > 0) or (isinstance(v, float) and 0 < v <= 1),
        "null, an integer > 0 (updates) or a fraction of an epoch in (0, 1]",
        "",
    ),
    "check_val_every_n_epoch": (
        lambda v: v is None or (_is_int(v) and v > 0),
        "null or an integer > 0",
        "",
    ),
    "log_every_n_steps": (lambda v: _is_int(v) and v > 0, "an integer > 0", ""),
}

#: Keys reglab sets itself (reglab.run.build_trainer); their "off" values are allowed.
SET_BY_REGLAB: dict[str, tuple[tuple[Any, ...], str]] = {
    "logger": ((None,), "pick loggers with the logger group: logger=csv|tensorboard|wandb|many"),
    "callbacks": ((None,), "add callbacks with the callbacks group: +callbacks.<name>._target_="),
    "enable_checkpointing": ((None, False), _PER_MEMBER_CHECKPOINTS),
    "limit_val_batches": ((None,), "members evaluate whole splits at their own cadence"),
    "limit_test_batches": ((None,), "every member is tested on the whole test split"),
    "limit_predict_batches": ((None,), "reglab does not predict"),
    "limit_train_batches": ((None,), _LIMITS),
    "min_epochs": ((None,), _LIMITS),
    "min_steps": ((None,), _LIMITS),
    "max_time": ((None,), _LIMITS),
    "fast_dev_run": ((None, False), f"{_LIMITS} (e.g. trainer.max_steps=1)"),
    "overfit_batches": ((None, 0), "a member's training set: data.train_size"),
    "reload_dataloaders_every_n_epochs": ((None, 0), "a stack's data stay on its device"),
    "use_distributed_sampler": ((None,), _ONE_DEVICE),
}

#: Lightning callbacks that need the Trainer's own metric-monitoring loop, or that act on
#: the whole Trainer where reglab acts per member.
REFUSED_CALLBACKS = {
    "EarlyStopping": f"per-member stopping: stop_when_fit, trainer.max_steps / max_epochs; "
    f"{_PER_MEMBER_CHECKPOINTS}",
    "ModelCheckpoint": f"{_PER_MEMBER_CHECKPOINTS} (last.ckpt, and best.ckpt with "
    "checkpoint.keep=true); per-member stopping: stop_when_fit",
    "OnExceptionCheckpoint": f"{_PER_MEMBER_CHECKPOINTS} (also on SIGTERM/SIGINT)",
    "GradientAccumulationScheduler": TRAINER_RULES["accumulate_grad_batches"][2],
    "Timer": _LIMITS,
    "BatchSizeFinder": "each member's own data.batch_size and optimizer.lr",
    "LearningRateFinder": "each member's own data.batch_size and optimizer.lr",
}


def nvidia_driver() -> bool:
    """Is an NVIDIA driver installed (what CUDA needs)? Read without importing torch."""
    return NVIDIA_DRIVER.exists() or shutil.which("nvidia-smi") is not None


def apple_silicon() -> bool:
    """Can torch's MPS backend exist here (macOS on arm64)?"""
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def local_accelerator(name: str) -> str:
    """What ``name`` means on this machine (``auto``: cuda, mps or cpu, as Lightning picks)."""
    if name != "auto":
        return name
    return "cuda" if nvidia_driver() else "mps" if apple_silicon() else "cpu"


def runs_elsewhere(choices: Mapping[str, Any] | Any) -> bool:
    """Do a sweep's jobs train on other machines (a SLURM launcher)? Then this machine's
    accelerators say nothing (each job checks its own where it trains)."""
    picked = dict(choices) if isinstance(choices, Mapping | DictConfig) else {}
    return any("slurm" in str(picked.get(k) or "") for k in ("launcher", "hydra/launcher"))


def _refuse(trainer: DictConfig, key: str, allowed: str, why: str) -> ConfigError:
    reason = f" ({why})" if why else ""
    return ConfigError(f"trainer.{key}={_shown(trainer, key)}: must be {allowed}{reason}")


def check_trainer(trainer: DictConfig, here: bool = True, stacked: bool = False) -> None:
    """The trainer group's target, keys and values; with ``here``, its accelerator and
    precision against this machine; ``stacked``: the jobs train in stacks of several. A
    target other than Lightning's is checked by :func:`check_trainer_class` (it imports
    the target's module)."""
    target = str(trainer.get("_target_", LIGHTNING_TRAINER))
    if target.startswith("lightning."):
        raise ConfigError(
            f"trainer._target_={target}: reglab's module is a pytorch_lightning LightningModule,"
            f" which {target} does not fit; use {LIGHTNING_TRAINER} (or a subclass of it)"
        )
    if target == LIGHTNING_TRAINER and importlib.util.find_spec("pytorch_lightning") is None:
        raise ConfigError(f"trainer._target_={target}: cannot be imported (not installed)")
    for key in map(str, trainer):
        if key.startswith("_"):
            continue
        if key not in TRAINER_PARAMS and target == LIGHTNING_TRAINER:
            allowed = [k for k in TRAINER_PARAMS if k not in SET_BY_REGLAB]
            raise ConfigError(
                f"trainer.{key}={_shown(trainer, key)}: not an argument of {target}; allowed "
                f"keys are {', '.join(allowed)}"
            )
        value = _plain(trainer.get(key))
        if key in TRAINER_RULES and not TRAINER_RULES[key][0](value):
            raise _refuse(trainer, key, *TRAINER_RULES[key][1:])
        if key in SET_BY_REGLAB and value not in SET_BY_REGLAB[key][0]:
            offs = SET_BY_REGLAB[key][0]
            allowed = " or ".join("null" if v is None else str(v).lower() for v in offs)
            raise _refuse(trainer, key, f"{allowed} (reglab sets it)", SET_BY_REGLAB[key][1])
    _check_combinations(trainer, stacked)
    accelerator = str(trainer.get("accelerator", "auto"))
    if here:
        check_machine(trainer)
        accelerator = local_accelerator(accelerator)
    precision = str(trainer.get("precision", "32-true"))
    if accelerator == "cpu" and precision.startswith("16-"):
        raise _refuse(trainer, "precision", "32-true or bf16-mixed on the CPU", "")


def _check_combinations(trainer: DictConfig, stacked: bool) -> None:
    """Keys that work alone but not together (in a stack, or in Lightning's barebones)."""
    precision = str(trainer.get("precision", "32-true"))
    if precision.startswith("16") and stacked:
        raise _refuse(
            trainer,
            "precision",
            "32-true or bf16-mixed with launcher=stacked / stacked_slurm",
            "16-mixed has one loss scale for the whole stack: an overflow in one member would "
            "skip every member's step; bf16-mixed needs no scaler",
        )
    if precision in UNCONVERTED:
        raise _refuse(
            trainer,
            "precision",
            "32-true, 16-mixed, bf16-mixed or tf32",
            "a stack's batches come as float32 from its device-resident data, which "
            f"{precision} would need converted; its mixed form computes in that dtype",
        )
    if precision.startswith("16") and trainer.get("gradient_clip_val"):
        raise _refuse(
            trainer,
            "precision",
            "32-true or bf16-mixed with trainer.gradient_clip_val",
            "reglab clips each member's gradients before the 16-bit scaler unscales them",
        )
    if trainer.get("barebones"):  # Lightning's opt-ins that barebones refuses
        for key in ("enable_model_summary", "profiler", "detect_anomaly"):
            if trainer.get(key) not in (None, False):
                raise _refuse(trainer, key, "null or false with trainer.barebones=true", "")


def check_machine(trainer: DictConfig) -> None:
    """Refuse an accelerator this machine lacks (cpu and auto are always there)."""
    accelerator = str(trainer.get("accelerator", "auto"))
    here = ["cpu", "auto"] + (["gpu", "cuda"] if nvidia_driver() else [])
    here += ["mps"] if apple_silicon() else []
    if accelerator in ("gpu", "cuda") and accelerator not in here:
        why = f"this machine has no NVIDIA GPU (no {NVIDIA_DRIVER}, no nvidia-smi)"
    elif accelerator == "mps" and accelerator not in here:
        why = "MPS needs Apple silicon (macOS on arm64)"
    else:
        return
    raise _refuse(trainer, "accelerator", " or ".join(here), why)


def check_trainer_class(trainer: DictConfig) -> None:
    """A ``trainer._target_`` of your own: importable, a subclass of Lightning's Trainer,
    and the group's keys its arguments (Trainer's too when it passes ``**kwargs`` on).
    Imports the target's module (run last: a refusal before it stays fast)."""
    target = str(trainer.get("_target_", LIGHTNING_TRAINER))
    if target == LIGHTNING_TRAINER:
        return
    module, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except Exception as error:  # the module is missing, or fails to import
        raise ConfigError(
            f"trainer._target_={target}: cannot be imported ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); {LIGHTNING_TRAINER} or a "
            "subclass of it"
        ) from None
    lightning = sys.modules.get("pytorch_lightning")
    if not (inspect.isclass(cls) and lightning and issubclass(cls, lightning.Trainer)):
        raise ConfigError(
            f"trainer._target_={target}: must be {LIGHTNING_TRAINER} or a subclass of it"
        )
    params = inspect.signature(cls).parameters
    allowed = [k for k in params if k != "self"]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        allowed += [k for k in TRAINER_PARAMS if k not in allowed]
    for key in map(str, trainer):
        if not key.startswith("_") and key not in allowed:
            raise ConfigError(
                f"trainer.{key}={_shown(trainer, key)}: not an argument of {target}; allowed "
                f"keys are {', '.join(allowed)}"
            )


def _named(target: str) -> str:
    return target.rsplit(".", 1)[-1]


def check_callbacks(cfg: DictConfig) -> list[str]:
    """Every entry of ``callbacks`` is ``{_target_: ..., <arguments>}``, ``members``
    (reglab.callbacks.MemberRuns) is there, once, and no callback that cannot work in a
    stack is asked for; the keys of listed targets are checked. Returns the entries whose
    targets must be imported to check their keys (:func:`check_callback_keys`)."""
    node = cfg.get("callbacks")
    entries = node if isinstance(node, DictConfig) else {}
    example = "e.g. +callbacks.lr_monitor._target_=pytorch_lightning.callbacks.LearningRateMonitor"
    member = entries.get("members")
    if not isinstance(member, DictConfig) or member.get("_target_") != MEMBER_RUNS:
        raise ConfigError(
            f"callbacks.members={_shown(cfg, 'callbacks.members')}: must be {MEMBER_RUNS} "
            "(conf/callbacks/default.yaml), which gives each member its evaluations, "
            "checkpoints, end and summary.json; add callbacks of your own beside it, " + example
        )
    imported = []
    for name in map(str, entries):
        entry = entries._get_node(name)
        if not isinstance(entry, DictConfig) or entry._is_none() or "_target_" not in entry:
            raise ConfigError(
                f"callbacks.{name}={_shown(cfg, f'callbacks.{name}')}: has no _target_; each "
                f"entry is {{_target_: <a Callback class>, <its arguments>}}, {example}"
            )
        target = str(entry._target_)
        if target == MEMBER_RUNS and name != "members":
            raise ConfigError(
                f"callbacks.{name}._target_={target}: already the entry callbacks.members "
                "(one per run)"
            )
        if target.startswith("lightning.pytorch."):
            raise ConfigError(
                f"callbacks.{name}._target_={target}: reglab's Trainer is pytorch_lightning's;"
                f" use pytorch_lightning.{target.removeprefix('lightning.pytorch.')}"
            )
        lightning = target.startswith("pytorch_lightning.callbacks.")
        if lightning and _named(target) in REFUSED_CALLBACKS:
            raise ConfigError(
                f"callbacks.{name}._target_={target}: cannot work in a stack "
                f"({REFUSED_CALLBACKS[_named(target)]})"
            )
        if target in TARGET_KEYS:
            _check_keys(f"callbacks.{name}", entry)
        else:
            imported.append(name)
    return imported


def check_callback_keys(cfg: DictConfig, names: list[str]) -> None:
    """The keys of callbacks whose classes are not listed in config_keys (imports them)."""
    for name in names:
        _check_keys(f"callbacks.{name}", cfg.callbacks[name])
