"""Rerunning into a job directory that already holds a run.

A sweep's job directory is named from the job's overrides, so a rerun finds its own job:
a completed one is skipped, an interrupted one resumes. That is only right while the job
computes the same thing. After an edit to an experiment or scale file the overrides, and
so the directory, stay the same while the config does not; the earlier run is then moved
aside, into ``<job>/.superseded/<time>/``, and the job runs afresh.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reglab import dotted, jobs
from reglab.locks import LOCK

SUPERSEDED = ".superseded"

#: THE list of result-neutral keys: where and how a job runs, not what it computes. Used by
#: the rerun guard (a rerun may change them and still use its earlier result), the sweep's
#: job folder names (conf/config.yaml's ``hydra.job.config.override_dirname.exclude_keys``
#: reads it: ``${reglab.neutral_keys:}``, :mod:`reglab.resolvers`), the stacked launcher
#: (:func:`reglab.stacking.stack_key`), the report and the test fixtures. Entries are
#: override keys; an entry also covers every key below it (``meta`` → ``meta.note``,
#: ``paths`` → ``paths.log_dir``), except for the groups in :data:`CHOICE_ONLY`
#: (:func:`reglab.jobs.is_excluded`, which names job folders).
HOW_KEYS = (
    "experiment",
    "scale",
    "name",
    "threads",
    "compile",
    "vmap_solo",
    "meta",  # notes of your own (+meta.note=...): recorded, never part of the result
    "launcher",
    "launcher.n_jobs",
    "launcher.threads_per_job",
    "launcher.cpus_per_task",
    "launcher.max_members",
    "launcher.n_procs",
    "launcher.dry_run",
    "launcher.memory_gb",
    "launcher.threads_per_proc",
    "logger",
    "paths",
    "paths.log_dir",
    "checkpoint",
    "checkpoint.enabled",
    "checkpoint.every_n_steps",
    "checkpoint.keep",
    "checkpoint.every_minutes",
    # the members' callback reads the checkpoint.* settings (conf/callbacks/default.yaml)
    "callbacks.members.enabled",
    "callbacks.members.every_minutes",
    "callbacks.members.every_n_steps",
    "callbacks.members.keep",
    "data.root",
    "data.download",
    "data.on_device",
    "data.eval_batch_size",
    "trainer",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.precision",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.profiler",
    "trainer.default_root_dir",
)

#: on a resolved config only the keys of these groups listed in :data:`HOW_KEYS` are neutral.
CHOICE_ONLY = jobs.CHOICE_ONLY

#: :data:`HOW_KEYS` as prefixes of resolved-config keys (the :data:`CHOICE_ONLY` groups left out).
HOW_CONFIG_KEYS = tuple(k for k in HOW_KEYS if k not in CHOICE_ONLY)


def is_how_key(key: str) -> bool:
    """Is this resolved-config key (dotted) result-neutral?"""
    return jobs.is_excluded(key, HOW_CONFIG_KEYS)


def is_how_override(override: str) -> bool:
    """Does this override only say how or where a job runs? The rule that names job
    folders (``+meta.note=…``, ``paths.data_dir=…``, but not ``trainer.max_steps=…``)."""
    return jobs.is_excluded(jobs.override_key(override), HOW_KEYS)


def changed_settings(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """``key: old → new`` for every setting outside :data:`HOW_KEYS` that differs.

    ``old`` is the resolved config an earlier summary recorded; ``None`` (a summary written
    before the config was known) compares as unchanged. A key on one side only counts as
    null on the other: a newer reglab's new option, off by default, changes nothing.
    A config group an earlier release did not record counts as this release's default
    (:data:`DEFAULT_GROUPS`).
    """
    if old is None:
        return []
    before, after = dotted.flatten(_with_default_groups(old, new)), dotted.flatten(new)
    return [
        f"{key}: {_shown(before, key)} → {_shown(after, key)}"
        for key in sorted(before.keys() | after.keys())
        if not is_how_key(key) and before.get(key) != after.get(key)
    ]


def set_aside(job_dir: Path) -> Path:
    """Move the earlier run's files into ``<job_dir>/.superseded/<time>/``; returns it.

    Hydra's own files for the run now starting (``.hydra/``, the job's log) and its lock stay.
    """
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    target = job_dir / SUPERSEDED / stamp
    n = 1
    while target.exists():
        n += 1
        target = job_dir / SUPERSEDED / f"{stamp}_{n}"
    target.mkdir(parents=True)
    for entry in job_dir.iterdir():
        if entry.name in (SUPERSEDED, ".hydra", LOCK) or entry.suffix == ".log":
            continue
        shutil.move(str(entry), target / entry.name)
    return target


#: Config groups a run recorded by an earlier release may lack; it ran as their default
#: (``callbacks``: the members' checkpoints and summaries, reglab.callbacks.MemberRuns).
DEFAULT_GROUPS = ("callbacks",)


def _with_default_groups(old: Mapping[str, Any], new: Mapping[str, Any]) -> Mapping[str, Any]:
    """``old`` with each of :data:`DEFAULT_GROUPS` it lacks filled in as this release's
    default, resolved against ``new`` (its entries interpolate keys compared themselves)."""
    missing = [g for g in DEFAULT_GROUPS if g not in old and g in new]
    if not missing:
        return old
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parent / "conf"
    tree = OmegaConf.create(dict(new))
    for group in missing:
        tree[group] = OmegaConf.load(conf / group / "default.yaml")
    filled = OmegaConf.to_container(tree, resolve=True)
    return {**old, **{g: filled[g] for g in missing}}


def _shown(settings: Mapping[str, Any], key: str) -> str:
    return str(settings[key]) if key in settings else "(absent)"
