"""Catch what Hydra itself would reject, and say it in one line, before Hydra starts.

Hydra reports an unknown key or option over several lines with a hint about stack
traces; a read-only output folder surfaces as a traceback. Composing the config once
up front (sweep overrides left out) turns both into one line that names the key. A
single run's config is also validated here, so that a bad value stops the program
before Hydra creates the run directory (a sweep's jobs are validated one by one, and
a bad grid point is recorded in its own directory; a sweep's fixed overrides still get
the checks that do not depend on the grid: non-finite numbers, keys nothing reads, and an
accelerator this machine lacks when the jobs train here). Imports
no torch or Lightning: a refusal takes a fraction of a second.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from reglab.resolvers import compose
from reglab.trainer_config import check_machine, runs_elsewhere
from reglab.validation import ConfigError, added_keys, check_structure, validate

# Hydra's flags that take a value; with any flag but -m/--multirun, Hydra is left alone.
_MULTIRUN = {"-m", "--multirun"}
HELP = {"-h", "--help"}
_USAGE = """\
reglab-train [overrides]         train one model (its folder: logs/runs/<name>/<time>/)
reglab-train -m [overrides]      a sweep: key=a,b,c runs one job per value
Every key below is one override away (key=value); notes of your own: +meta.<key>=value.
README.md explains the groups, the keys and what each run writes.

== Config groups (group=option) ==
{groups}

== Config (with these overrides) ==
{config}
Flags: -m/--multirun, --cfg job|hydra|all, --resolve, --info, --hydra-help, -h/--help
"""


def _one_line(message: str) -> str:
    """Hydra's multi-line composition errors as one line naming the key."""
    if match := re.search(r"Could not override '([^']+)'", message):
        key = match.group(1)
        return f"{key}: unknown key (a new key needs a leading +, e.g. +{key}=...)"
    if match := re.search(r"Could not find '([^']+)/([^'/]+)'", message):
        group, option = match.groups()
        options = re.findall(r"^\s+(\S+)$", message.split("Config search path")[0], re.M)
        return f"{group}={option}: unknown option; allowed are {', '.join(options)}"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("full_key", "object_type"))]
    return re.sub(r"\s+", " ", "; ".join(lines))


def _writable(path: Path) -> bool:
    """Can ``path`` be created and written? (Tries a temporary file: root ignores modes.)"""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    try:
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def usage(config_dir: str, args: list[str]) -> str:
    """``reglab-train --help``: the groups, their options and the composed config, as
    Hydra's app help shows them (Hydra lists the groups one composition each: seconds)."""
    root = Path(config_dir)
    groups = [
        f"{d.name}: {', '.join(sorted(p.stem for p in d.glob('*.yaml')))}"
        for d in sorted(root.iterdir())
        if d.is_dir() and any(d.glob("*.yaml"))
    ]
    overrides = [a for a in args if not a.startswith("-")]
    try:
        cfg = compose(overrides, config_dir=config_dir)
    except Exception as error:
        raise ConfigError(_one_line(str(error))) from None
    return _USAGE.format(groups="\n".join(groups), config=OmegaConf.to_yaml(cfg))


_MISSING = object()


def _force_added(config_dir: str, fixed: list[str]) -> list[str]:
    """The keys ``++key=value`` overrides add (keys the config lacks without them), which
    are then checked as ``+key`` ones are; a ``++`` that sets an existing key is fine."""
    force = [o for o in fixed if o.startswith("++")]
    if not force:
        return []
    rest = [o for o in fixed if not o.startswith("++")]
    base = compose(rest, config_dir=config_dir)
    keys = [o[2:].split("=", 1)[0] for o in force]
    return [k for k in keys if OmegaConf.select(base, k, default=_MISSING) is _MISSING]


def precheck(config_dir: str, args: list[str]) -> None:
    """Raise :class:`ConfigError` if Hydra would refuse ``args`` or could not write."""
    if any(a.startswith("-") and a not in _MULTIRUN for a in args):
        return
    multirun = any(a in _MULTIRUN for a in args)
    overrides = [a for a in args if a not in _MULTIRUN]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        cfg = compose(fixed, hydra=True, config_dir=config_dir)
    except Exception as error:
        raise ConfigError(_one_line(str(error))) from None
    added = added_keys(fixed) + _force_added(config_dir, fixed)
    choices = dict(OmegaConf.select(cfg, "hydra.runtime.choices", default=None) or {})
    if multirun:
        check_structure(cfg, added, choices)
        if not runs_elsewhere(choices) and isinstance(cfg.get("trainer"), DictConfig):
            check_machine(cfg.trainer)  # the sweep's jobs train here
    else:
        validate(cfg, added, choices, here=True)  # a single run trains here, whatever launcher
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        out = Path(str(OmegaConf.select(cfg, key)))
    except Exception:  # e.g. ${now:} needs Hydra's runtime: nothing to check here
        return
    if not _writable(out):
        raise ConfigError(
            f"{key}={out}: not writable; point REGLAB_LOG_DIR (or paths.log_dir) at a "
            "writable folder"
        )
