"""Check a composed config before anything is loaded or trained.

Every problem becomes one :class:`ConfigError` whose message names the key, the value
and what is allowed. Keys a group's ``_target_`` does not accept are reported here too,
rather than as a ``TypeError`` deep inside instantiation.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from reglab.data.sources import DATASETS
from reglab.models.blocks import ACTIVATIONS


class ConfigError(ValueError):
    """A config value that reglab cannot run with."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive_ints(v: Any) -> bool:
    return isinstance(v, list | tuple) and len(v) > 0 and all(_is_int(w) and w > 0 for w in v)


Rule = tuple[str, Callable[[Any], bool], str]

RULES: list[Rule] = [
    ("seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("threads", lambda v: v is None or (_is_int(v) and v > 0), "null or an integer > 0"),
    ("dropout.p_input", lambda v: _is_num(v) and 0 < v <= 1, "a retention probability in (0, 1]"),
    ("dropout.p_hidden", lambda v: _is_num(v) and 0 < v <= 1, "a retention probability in (0, 1]"),
    ("dropout.mode", lambda v: v in ("inverted", "weight_scaling"), "inverted or weight_scaling"),
    ("dropout.mc_samples", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("regularizer.lam", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("regularizer.lam_l1", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("regularizer.lam_l2", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("regularizer.c", lambda v: _is_num(v) and v > 0, "a number > 0"),
    ("corruption.q", lambda v: _is_num(v) and 0 <= v <= 1, "a probability in [0, 1]"),
    ("data.name", lambda v: v in DATASETS, "one of " + ", ".join(DATASETS)),
    ("data.val_size", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("data.train_size", lambda v: v is None or (_is_int(v) and v > 0), "null or an integer > 0"),
    ("data.crop", lambda v: v is None or (_is_int(v) and v > 0), "null or an integer > 0"),
    ("data.binarize", lambda v: isinstance(v, bool), "true or false"),
    ("data.batch_size", lambda v: _is_int(v) and v > 0, "an integer > 0"),
    ("data.eval_batch_size", lambda v: _is_int(v) and v > 0, "an integer > 0"),
    (
        "data.normalize",
        lambda v: v in ("standardize", "unit", "per_image"),
        "standardize, unit or per_image",
    ),
    ("model.hidden", _positive_ints, "a non-empty list of positive integers"),
    ("model.channels", _positive_ints, "a non-empty list of positive integers"),
    ("model.fc", lambda v: v == [] or _positive_ints(v), "a list of positive integers"),
    ("model.kernel_size", lambda v: _is_int(v) and v > 0 and v % 2 == 1, "an odd integer > 0"),
    ("model.pool", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("model.activation", lambda v: v in ACTIVATIONS, "one of " + ", ".join(ACTIVATIONS)),
    ("model.init_std", lambda v: v is None or (_is_num(v) and v > 0), "null or a number > 0"),
    ("optimizer.lr", lambda v: _is_num(v) and v > 0, "a number > 0"),
    ("optimizer.momentum", lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
    (
        "trainer.max_epochs",
        lambda v: v is None or (_is_int(v) and v >= -1),
        "an integer >= 0 (-1: no limit)",
    ),
    (
        "trainer.max_steps",
        lambda v: _is_int(v) and (v == -1 or v > 0),
        "an integer > 0 (-1: no limit)",
    ),
    ("fit_threshold", lambda v: _is_num(v) and 0 <= v <= 100, "an error % in [0, 100]"),
    ("probe_size", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    (
        "checkpoint.every_n_steps",
        lambda v: v is None or (_is_int(v) and v > 0),
        "null or an integer > 0",
    ),
]

GROUPS_WITH_TARGET = (
    "data",
    "corruption",
    "model",
    "dropout",
    "regularizer",
    "optimizer",
    "scheduler",
    "trainer",
)
INJECTED = {  # arguments reglab passes itself, never from the config
    "data": {"corruption", "seed"},
    "model": {"input_shape", "num_classes", "dropout", "seed"},
    "optimizer": {"params"},
    "scheduler": {"optimizer"},
}


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _check_keys(group: str, node: DictConfig) -> None:
    """Every key of ``group`` must be a parameter of its ``_target_``."""
    target = node.get("_target_")
    if target is None:
        return
    try:
        obj = get_object(target)
    except Exception:
        raise ConfigError(f"{group}._target_={target}: cannot be imported") from None
    params = inspect.signature(obj).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for key in node:
        if key.startswith("_"):
            continue
        if key in INJECTED.get(group, ()) or key not in params:
            allowed = sorted(set(params) - INJECTED.get(group, set()) - {"self"})
            raise ConfigError(f"{group}.{key}: unknown key; allowed keys are {', '.join(allowed)}")


#: The trainer keys reglab's training loop reads (reglab.run._settings); the group keeps
#: Lightning's names, and any other Trainer argument would be silently ignored.
TRAINER_KEYS = (
    "accelerator", "devices", "max_epochs", "max_steps", "precision", "deterministic",
    "check_val_every_n_epoch", "val_check_interval", "log_every_n_steps",
    "num_sanity_val_steps", "enable_progress_bar", "enable_model_summary",
)  # fmt: skip
PRECISIONS = ("32-true", "32", "bf16-mixed", "tf32")


def _check_trainer(trainer: DictConfig) -> None:
    for key in trainer:
        if not key.startswith("_") and key not in TRAINER_KEYS:
            raise ConfigError(
                f"trainer.{key}: not read by reglab's training loop; allowed keys are "
                + ", ".join(TRAINER_KEYS)
            )
    devices = trainer.get("devices", 1)
    if devices not in (1, "1", "auto"):
        raise ConfigError(
            f"trainer.devices={devices}: must be 1; a run trains on one device (fill a GPU "
            "with many jobs at once: launcher=stacked)"
        )
    precision = str(trainer.get("precision", "32-true"))
    if precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={precision}: must be one of {', '.join(PRECISIONS)}")


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` on the first bad value in ``cfg``."""
    try:
        for key, ok, allowed in RULES:
            value = _plain(OmegaConf.select(cfg, key, default="__missing__"))
            if value == "__missing__":
                continue
            if not ok(value):
                raise ConfigError(f"{key}={value!r}: must be {allowed}")
    except ConfigError:
        raise
    except Exception as error:  # interpolation errors and the like
        raise ConfigError(str(error).splitlines()[0]) from None
    for group in GROUPS_WITH_TARGET:
        node = cfg.get(group)
        if isinstance(node, DictConfig):
            _check_keys(group, node)
    if isinstance(cfg.get("trainer"), DictConfig):
        _check_trainer(cfg.trainer)
    steps, epochs = cfg.trainer.get("max_steps", -1), cfg.trainer.get("max_epochs", None)
    if steps == -1 and epochs in (None, -1):
        raise ConfigError("trainer.max_epochs / trainer.max_steps: set at least one limit")
