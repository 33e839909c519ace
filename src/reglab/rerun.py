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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

SUPERSEDED = ".superseded"

#: Keys that say where and how a job runs, not what it computes: a rerun may change them
#: and still use its earlier result (the job directory names leave them out for the same
#: reason, see ``hydra.job.config.override_dirname`` in conf/config.yaml).
HOW_KEYS = (
    "name",
    "threads",
    "compile",
    "paths",
    "launcher",
    "logger",
    "checkpoint",
    "scale",
    "data.root",
    "data.download",
    "data.on_device",
    "data.eval_batch_size",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.strategy",
    "trainer.num_nodes",
    "trainer.precision",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
)


def changed_settings(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """``key: old → new`` for every setting outside :data:`HOW_KEYS` that differs.

    ``old`` is the resolved config an earlier summary recorded; ``None`` (a summary written
    before the config was known) compares as unchanged. A key on one side only counts as
    null on the other: a newer reglab's new option, off by default, changes nothing.
    """
    if old is None:
        return []
    before, after = dict(_leaves(old)), dict(_leaves(new))
    return [
        f"{key}: {_shown(before, key)} → {_shown(after, key)}"
        for key in sorted(before.keys() | after.keys())
        if not _is_how_key(key) and before.get(key) != after.get(key)
    ]


def set_aside(job_dir: Path) -> Path:
    """Move the earlier run's files into ``<job_dir>/.superseded/<time>/``; returns it.

    Hydra's own files for the run now starting (``.hydra/``, the job's log) stay.
    """
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    target = job_dir / SUPERSEDED / stamp
    n = 1
    while target.exists():
        n += 1
        target = job_dir / SUPERSEDED / f"{stamp}_{n}"
    target.mkdir(parents=True)
    for entry in job_dir.iterdir():
        if entry.name in (SUPERSEDED, ".hydra") or entry.suffix == ".log":
            continue
        shutil.move(str(entry), target / entry.name)
    return target


def _leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def _shown(settings: Mapping[str, Any], key: str) -> str:
    return str(settings[key]) if key in settings else "(absent)"


def _is_how_key(key: str) -> bool:
    return any(key == how or key.startswith(f"{how}.") for how in HOW_KEYS)
