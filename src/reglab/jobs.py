"""Which folders of a sweep are its jobs.

Shared by the summary a sweep prints when it ends (:mod:`reglab.sweep`, in the launching
process, which must stay light: no pandas) and the report (:mod:`reglab.report.sweeps`).
A sweep's folder is stable, so it can also hold the job folders of an earlier sweep with
other overrides; where Hydra's basic sweeper made the sweep, :func:`expected_jobs`
re-derives the jobs it asked for from ``multirun.yaml``, and only those count.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from reglab import dotted
from reglab.summary import SUMMARY

MULTIRUN = "multirun.yaml"
OVERRIDES = Path(".hydra") / "overrides.yaml"
#: conf/config.yaml's ``exclude_keys``, as ``multirun.yaml`` records it.
NEUTRAL_KEYS = "${reglab.neutral_keys:}"
#: Folders that never hold jobs: logger output, checkpoints, and hidden ones such as
#: ``<job>/.superseded/`` (runs of an earlier config, see :mod:`reglab.rerun`).
NOT_JOBS = frozenset({"checkpoints", "csv", "tensorboard", "wandb"})


def skip_dir(name: str) -> bool:
    """True for folders that never hold jobs."""
    return name.startswith(".") or name in NOT_JOBS


def job_dirs(root: str | Path) -> list[Path]:
    """Folders below ``root`` that are Hydra jobs (a summary or ``.hydra/overrides.yaml``)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        path = Path(dirpath)
        if SUMMARY in filenames or (path / OVERRIDES).is_file():
            if path != Path(root):
                out.append(path)
            dirnames[:] = []  # a job's own folders (checkpoints, csv, wandb) hold no jobs
            continue
        dirnames[:] = sorted(d for d in dirnames if not skip_dir(d))
    return sorted(out)


def override_key(override: str) -> str:
    """``+model.depth=3`` → ``model.depth``."""
    return override.split("=", 1)[0].lstrip("+~")


def dirname_excluded(multirun: dict[str, Any]) -> frozenset[str]:
    """Override keys the sweep leaves out of its job folders' names
    (``hydra.job.config.override_dirname.exclude_keys``: paths, launcher, threads, …).
    ``multirun.yaml`` records it unresolved: ``${reglab.neutral_keys:}`` is
    :data:`reglab.rerun.HOW_KEYS`."""
    node = dotted.get(multirun, "hydra.job.config.override_dirname.exclude_keys")
    if isinstance(node, str) and node.replace(" ", "") == NEUTRAL_KEYS:
        from reglab.rerun import HOW_KEYS  # rerun imports this module

        node = list(HOW_KEYS)
    return frozenset(str(k) for k in node) if isinstance(node, list) else frozenset()


#: Groups whose *choice* is result-neutral (``trainer=gpu`` names the same job as
#: ``trainer=cpu``) although keys below them are not (``trainer.max_steps``).
CHOICE_ONLY = frozenset({"trainer"})


def is_excluded(key: str, excluded: Iterable[str]) -> bool:
    """Is the override key ``key`` left out of job folder names? An excluded key covers
    the keys below it (``meta`` → ``meta.note``), except a :data:`CHOICE_ONLY` group's.

    Hydra's own ``exclude_keys`` matches exactly; ``hydra.sweep.subdir`` in
    conf/config.yaml names folders with :func:`job_dirname`, which uses this rule.
    """
    return any(key == ex or (ex not in CHOICE_ONLY and key.startswith(f"{ex}.")) for ex in excluded)


def job_dirname(overrides: Iterable[str], excluded: Iterable[str]) -> str:
    """A job's folder name: its overrides sorted and joined by ``,``, the excluded keys
    left out (as Hydra's ``override_dirname``, with :func:`is_excluded`'s prefix rule)."""
    return ",".join(sorted(job_key(overrides, excluded)))


def job_key(overrides: Iterable[str], excluded: Iterable[str] = ()) -> frozenset[str]:
    """A job's identity: its overrides in any order, less the ``excluded`` keys.

    With the keys left out of folder names excluded, two runs share a key exactly when
    they share a job folder: a rerun with another ``paths.log_dir`` is the same job.
    """
    excluded = list(excluded)
    return frozenset(str(o) for o in overrides if not is_excluded(override_key(str(o)), excluded))


def load_yaml(path: Path) -> Any:
    """A YAML file's content; ``{}`` if it is missing or unreadable."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def expected_jobs(multirun: dict[str, Any]) -> dict[frozenset[str], list[str]] | None:
    """The jobs Hydra's basic sweeper makes of this ``multirun.yaml`` (None if unknown),
    keyed by :func:`job_key` with the sweep's :func:`dirname_excluded` keys.

    Mirrors ``BasicSweeper.sweep``: ``hydra.sweeper.params`` first (interpolations such as
    ``${scale.seeds}`` resolved against the sweep's config, as Hydra does), then the
    command-line overrides, expanded by :func:`expand_sweep`.
    """
    hydra = multirun.get("hydra") if isinstance(multirun, dict) else None
    hydra = hydra if isinstance(hydra, dict) else {}
    target = str((hydra.get("sweeper") or {}).get("_target_") or "")
    task = (hydra.get("overrides") or {}).get("task")
    if not target.endswith("BasicSweeper") or not isinstance(task, list):
        return None
    try:
        from omegaconf import OmegaConf

        params = OmegaConf.create(multirun).hydra.sweeper.params or {}
        jobs = expand_sweep([f"{k}={params[k]}" for k in params] + [str(t) for t in task])
    except Exception:  # a sweep this reader cannot re-derive: list what is there
        return None
    excluded = dirname_excluded(multirun)
    return {job_key(job, excluded): job for job in jobs}


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """The jobs Hydra's basic sweeper makes of these overrides, in its order.

    Each key gets its values (a list or range sweep's, else its one value; a later override
    of a key replaces the earlier one in its place); the jobs are their cartesian product.
    Hydra's ``BasicSweeper.split_arguments`` is private API, so this repeats it with the
    public override parser; ``tests/e2e/test_hydra_contract.py`` holds the two equal.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    axes: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        if not override.is_sweep_override():
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ValueError(f"{key}: the basic sweeper sweeps lists and ranges only")
    return [list(job) for job in itertools.product(*axes.values())]
