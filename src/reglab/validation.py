"""Check a composed config before anything is loaded or trained.

Every problem becomes one :class:`ConfigError` whose message names the key, the value
and what is allowed. Keys a group's ``_target_`` does not accept are reported here too,
rather than as a ``TypeError`` deep inside instantiation, and so are non-finite numbers
and keys added with ``+`` that nothing reads. Imports no torch or Lightning (the keys
of reglab's targets are in :mod:`reglab.config_keys`), so a refusal is immediate.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from reglab import dotted
from reglab.config_keys import (
    ACTIVATION_NAMES,
    MOMENTUM_RAMP_KEYS,
    OPTIMIZER_TARGETS,
    TARGET_KEYS,
    TOP_KEYS,
)
from reglab.datasets import DATASETS, NAMES, data_size_error


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
    ("vmap_solo", lambda v: v is True or v is False or v == "auto", "auto, true or false"),
    ("dropout.p_input", lambda v: _is_num(v) and 0 < v <= 1, "a retention probability in (0, 1]"),
    ("dropout.p_hidden", lambda v: _is_num(v) and 0 < v <= 1, "a retention probability in (0, 1]"),
    ("dropout.mode", lambda v: v in ("inverted", "weight_scaling"), "inverted or weight_scaling"),
    ("dropout.mc_samples", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("regularizer.lam", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("regularizer.lam_l1", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("regularizer.lam_l2", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("regularizer.c", lambda v: _is_num(v) and v > 0, "a number > 0"),
    ("corruption.q", lambda v: _is_num(v) and 0 <= v <= 1, "a probability in [0, 1]"),
    ("data.name", lambda v: v in NAMES, "one of " + ", ".join(NAMES)),
    ("data.val_size", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("data.train_size", lambda v: v is None or (_is_int(v) and v > 0), "null or an integer > 0"),
    ("data.crop", lambda v: v is None or (_is_int(v) and v > 0), "null or an integer > 0"),
    ("data.binarize", lambda v: isinstance(v, bool), "true or false"),
    (
        "data.on_device",
        lambda v: v is True,
        "true: a run's images go to its training device once, shared by a stack's members",
    ),
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
    (
        "model.activation",
        lambda v: v in ACTIVATION_NAMES,
        "one of " + ", ".join(ACTIVATION_NAMES),
    ),
    ("model.init_std", lambda v: v is None or (_is_num(v) and v > 0), "null or a number > 0"),
    ("optimizer.lr", lambda v: _is_num(v) and v > 0, "a number > 0"),
    ("optimizer.momentum", lambda v: _is_num(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("optimizer.dampening", lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    ("optimizer.weight_decay", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("optimizer.nesterov", lambda v: isinstance(v, bool), "true or false"),
    ("optimizer.eps", lambda v: _is_num(v) and v > 0, "a number > 0"),
    (
        "optimizer.betas",
        lambda v: isinstance(v, list) and len(v) == 2 and all(_is_num(b) and 0 <= b < 1 for b in v),
        "two numbers in [0, 1), e.g. [0.9, 0.999]",
    ),
    ("scheduler.step_size", lambda v: _is_int(v) and v > 0, "an integer > 0 (epochs)"),
    ("scheduler.gamma", lambda v: _is_num(v) and 0 < v <= 1, "a factor in (0, 1]"),
    (
        "scheduler.T_max",
        lambda v: _is_int(v) and v > 0,
        "an integer > 0 (epochs; set trainer.max_epochs > 0 or scheduler.T_max)",
    ),
    ("scheduler.eta_min", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("momentum_ramp.start", lambda v: _is_num(v) and 0 <= v < 1, "a momentum in [0, 1)"),
    ("momentum_ramp.end", lambda v: _is_num(v) and 0 <= v < 1, "a momentum in [0, 1)"),
    ("momentum_ramp.steps", lambda v: _is_int(v) and v > 0, "an integer > 0 (updates)"),
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
    (
        "checkpoint.every_minutes",
        lambda v: v is None or (_is_num(v) and v > 0),
        "null or a number of minutes > 0",
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
    "optimizer": {"params", "members"},
    "scheduler": {"optimizer"},
}


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _shown(cfg: DictConfig, key: str) -> str:
    """The value at dotted ``key`` as the command line writes it."""
    try:
        return str(_plain(OmegaConf.select(cfg, key)))
    except Exception:  # an interpolation only Hydra's runtime resolves
        return "?"


def _target_keys(group: str, target: str) -> tuple[str, ...] | None:
    """The keys ``target`` reads (None: any); a target not in TARGET_KEYS is imported."""
    if target in TARGET_KEYS:
        return TARGET_KEYS[target]
    from hydra.utils import get_object  # a class of your own: its signature says

    try:
        params = inspect.signature(get_object(target)).parameters
    except Exception:
        raise ConfigError(f"{group}._target_={target}: cannot be imported") from None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return tuple(k for k in params if k not in INJECTED.get(group, set()) | {"self"})


def check_optimizer(target: Any) -> None:
    """Only the torch.optim classes reglab has member versions of (the one check)."""
    if str(target) not in OPTIMIZER_TARGETS:
        raise ConfigError(
            f"optimizer._target_={target}: allowed are {', '.join(OPTIMIZER_TARGETS)}"
        )


def _check_keys(group: str, node: DictConfig) -> None:
    """Every key of ``group`` must be one its ``_target_`` reads."""
    target = node.get("_target_")
    if target is None:
        return
    if group == "optimizer":
        check_optimizer(target)
    allowed = _target_keys(group, str(target))
    for key in node:
        if allowed is not None and not str(key).startswith("_") and key not in allowed:
            raise ConfigError(
                f"{group}.{key}={_shown(node, str(key))}: unknown key; allowed keys are "
                + (", ".join(allowed) or "none")
            )


def _nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(_nonfinite(v) for v in value)
    if isinstance(value, dict):
        return any(_nonfinite(v) for v in value.values())
    return False


def check_finite(node: DictConfig, prefix: str = "") -> None:
    """Refuse inf and nan anywhere (Hydra's own ``hydra`` node aside)."""
    for key in node:
        if not prefix and key == "hydra":
            continue
        try:
            value = node[key]
            plain = None if isinstance(value, DictConfig) else _plain(value)
        except Exception:  # an interpolation only Hydra's runtime resolves
            continue
        if isinstance(value, DictConfig):
            check_finite(value, f"{prefix}{key}.")
        elif _nonfinite(plain):
            raise ConfigError(f"{prefix}{key}={plain}: must be a finite number (no inf or nan)")


def added_keys(overrides: Iterable[str]) -> list[str]:
    """The keys of ``+key=value`` overrides (``++`` may also set a key that exists)."""
    return [o[1:].split("=", 1)[0] for o in overrides if o.startswith("+") and o[1:2] != "+"]


def check_added(
    cfg: DictConfig, added: Iterable[str], choices: Iterable[str] | Mapping[str, Any] = ()
) -> None:
    """Refuse a key added with ``+`` that nothing reads, naming the keys allowed there.

    Keys under a ``_target_`` are the target's (:func:`_check_keys`); ``meta.*`` holds
    notes of your own and ``hydra.*`` is Hydra's; ``choices`` are config groups; a
    ``callbacks`` entry is any callback (:func:`reglab.trainer_config.check_callbacks`)."""
    skip = {"meta", "hydra", "callbacks"}
    added = [k for k in added if k.split(".")[0] not in skip and k not in set(choices)]
    added = [k for k in added if not set("@/") & set(k)]

    def is_new(path: str) -> bool:  # everything below path came from a + override
        leaves = [k for k, _ in dotted.leaves(dotted.node(cfg, path), path, keep_empty=True)]
        return all(any(f"{leaf}.".startswith(f"{k}.") for k in added) for leaf in leaves)

    for key in added:
        parts = key.split(".")
        for i, part in enumerate(parts):
            here = ".".join(parts[:i])
            node = dotted.node(cfg, here)
            if not isinstance(node, DictConfig) or "_target_" in node or here == "trainer":
                break
            if here == "momentum_ramp":
                allowed = list(MOMENTUM_RAMP_KEYS)
            else:
                keys = [k for k in node if here or k != "hydra"]
                allowed = [k for k in keys if not is_new(f"{here}.{k}" if here else str(k))]
                allowed += [k for k in (() if here else TOP_KEYS) if k not in allowed]
            if part not in allowed:
                where = f"under {here}" if here else "at the top level"
                raise ConfigError(
                    f"{key}={_shown(cfg, key)}: not read by reglab; allowed keys {where} are "
                    f"{', '.join(map(str, allowed)) or 'none'} (notes of your own: "
                    f"+meta.{parts[-1]}=...)"
                )


def check_structure(
    cfg: DictConfig, added: Iterable[str] = (), choices: Iterable[str] | Mapping[str, Any] = ()
) -> None:
    """Non-finite numbers, keys nothing reads, a partial ``momentum_ramp``."""
    check_finite(cfg)
    check_added(cfg, added, choices)
    ramp = cfg.get("momentum_ramp")
    if ramp is not None and (
        not isinstance(ramp, DictConfig) or set(ramp) != set(MOMENTUM_RAMP_KEYS)
    ):
        raise ConfigError(
            f"momentum_ramp={_shown(cfg, 'momentum_ramp')}: must be null or all of start, end, "
            "steps, e.g. momentum_ramp={start:0.5,end:0.99,steps:100000}"
        )


def validate(
    cfg: DictConfig,
    added: Iterable[str] = (),
    choices: Iterable[str] | Mapping[str, Any] = (),
    here: bool | None = None,
) -> None:
    """Raise :class:`ConfigError` on the first bad value in ``cfg``. ``added``: the keys the
    command line added with ``+`` (:func:`added_keys`); ``choices``: the config groups (and
    the option picked in each); ``here``: does the run train on this machine (its
    accelerator is then checked)? Default: unless ``choices`` pick a SLURM launcher."""
    from reglab import trainer_config as tc  # it imports this module's helpers

    check_structure(cfg, added, choices)
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
        if isinstance(node, DictConfig) and group != "trainer":  # trainer: trainer_config
            _check_keys(group, node)
    loggers = cfg.get("logger")
    for name, node in loggers.items() if isinstance(loggers, DictConfig) else ():
        if isinstance(node, DictConfig):
            _check_keys(f"logger.{name}", node)
    here = not tc.runs_elsewhere(choices) if here is None else here
    if isinstance(cfg.get("trainer"), DictConfig):
        stacked = str(OmegaConf.select(cfg, "launcher.name", default="")).startswith("stacked")
        tc.check_trainer(cfg.trainer, here, stacked)
    to_import = tc.check_callbacks(cfg)
    if isinstance(cfg.get("data"), DictConfig):
        check_data(cfg.data)
    steps, epochs = cfg.trainer.get("max_steps", -1), cfg.trainer.get("max_epochs", None)
    if steps == -1 and epochs in (None, -1):
        raise ConfigError("trainer.max_epochs / trainer.max_steps: set at least one limit")
    # last: these import a class of your own (and so, likely, torch and Lightning)
    tc.check_trainer_class(cfg.trainer)
    tc.check_callback_keys(cfg, to_import)


def check_data(data: DictConfig) -> None:
    """What depends on the data set, known without loading it: crop, hold-out and subset
    sizes against its facts (:data:`reglab.datasets.DATASETS`), and its files when nothing
    may be downloaded."""
    name = data.get("name")
    if name not in DATASETS:
        return
    facts = DATASETS[name]
    side = min(facts.shape[1:])
    error = data_size_error(
        name, facts.train_size, side, data.get("crop"), data.get("val_size", 0),
        data.get("train_size"),
    )  # fmt: skip
    if error:
        raise ConfigError(error)
    root = Path(str(data.get("root"))).expanduser()
    missing = [f for f in facts.files if not (root / f).is_file()]
    if missing and not data.get("download", True):
        raise ConfigError(
            f"data.root={root}: {missing[0].split('/')[0]} not found there ({missing[0]} "
            f"missing); set data.download=true or put the files there (env REGLAB_DATA_DIR "
            "sets the root)"
        )
