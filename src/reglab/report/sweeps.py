"""Find Hydra sweeps and single runs under the log folder and read their summaries into pandas.

A sweep is a folder holding Hydra's ``multirun.yaml``; its jobs are the folders below it
(at any depth, up to the next sweep) that hold a ``summary.json`` or Hydra's
``.hydra/overrides.yaml``. Only ``summary.json`` is read for results (never logs or
checkpoints), so a job whose summary is missing, or says ``failed`` / ``diverged``, is
listed as such and never plotted. Where Hydra's basic sweeper made the sweep, the jobs it
was asked for are re-derived from ``multirun.yaml`` exactly as Hydra does, so jobs that
never started are listed too, and job folders left over from an earlier sweep into the
same folder are ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reglab import dotted
from reglab.jobs import (
    MULTIRUN,
    OVERRIDES,
    dirname_excluded,
    expected_jobs,
    job_dirs,
    job_key,
    load_yaml,
    override_key,
    skip_dir,
)
from reglab.rerun import is_how_override
from reglab.summary import COMPLETED, FAILED, NO_SUMMARY, NOT_STARTED, SUMMARY, UNFINISHED

#: Scalar metrics copied to their own columns (percent errors, nats, fractions, steps).
METRIC_COLUMNS = (
    "test_error",
    "train_error",
    "val_error",
    "test_loss",
    "train_loss",
    "test_error_mc",
    "zero_weight_fraction",
    "label_noise_fraction",
    "steps",
    "steps_to_fit",
)

RUN_COLUMNS = (
    "experiment",
    "scale",
    "status",
    "job",
    "overrides",
    "seed",
    "wall_time_s",
    *METRIC_COLUMNS,
    "error",
    "git_commit",
    "path",
    "sweep",
    "choices",
    "config",
    "metrics",
    "history",
    "mtime",
)


# --------------------------------------------------------------------------- the sweep


@dataclass
class Sweep:
    """One Hydra multirun: where it is, what it ran, and one row per job in ``runs``."""

    root: Path
    experiment: str
    scale: str | None
    runs: pd.DataFrame
    multirun: dict[str, Any] = field(default_factory=dict)
    ignored: int = 0  # job folders of an earlier sweep into the same folder

    @property
    def completed(self) -> pd.DataFrame:
        """The jobs with a ``completed`` summary: the only ones a figure may use."""
        return self.runs[self.runs["status"] == COMPLETED].reset_index(drop=True)

    @property
    def incomplete(self) -> pd.DataFrame:
        """Failed, diverged, unfinished (no summary) and never-started jobs."""
        return self.runs[self.runs["status"] != COMPLETED].reset_index(drop=True)

    @property
    def finished(self) -> bool:
        """Every job has ended (completed, failed or diverged): none is still to run."""
        return bool(len(self.runs)) and not self.runs["status"].isin(UNFINISHED).any()

    @property
    def started(self) -> float:
        """When the sweep was launched (mtime of ``multirun.yaml``, seconds since epoch)."""
        return _mtime(self.root / MULTIRUN)

    @property
    def wall_time_s(self) -> float:
        """Summed wall time of the jobs with a summary (compute time, not elapsed time)."""
        return float(pd.to_numeric(self.runs["wall_time_s"], errors="coerce").sum())

    @property
    def elapsed_s(self) -> float:
        """From launch to the newest summary (seconds; 0 before any job has one)."""
        ended_jobs = self.runs[~self.runs["status"].isin([NO_SUMMARY, NOT_STARTED])]  # summaries
        ended = pd.to_numeric(ended_jobs["mtime"], errors="coerce").max()
        return max(0.0, float(ended) - self.started) if ended == ended and ended else 0.0

    @property
    def sweep_overrides(self) -> list[str]:
        """The command line of the sweep (with its comma-separated sweep values)."""
        return list(dotted.get(self.multirun, "hydra.overrides.task") or [])

    @property
    def grid_keys(self) -> frozenset[str] | None:
        """The keys of the sweep's own grid, ``hydra.sweeper.params`` (the experiment and
        scale files'), as opposed to sweeps added on the command line; None if unrecorded."""
        params = dotted.get(self.multirun, "hydra.sweeper.params")
        if not isinstance(params, dict) or not params:
            return None
        return frozenset(override_key(str(k)) for k in params)

    @property
    def unnamed_keys(self) -> frozenset[str]:
        """Override keys left out of job folders' names: they never change a result."""
        return dirname_excluded(self.multirun)

    def status_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.runs["status"].value_counts().items()}


# --------------------------------------------------------------------------- discovery


def default_log_dir() -> Path:
    """``$REGLAB_LOG_DIR`` or ``logs``, as in ``conf/config.yaml``."""
    return Path(os.environ.get("REGLAB_LOG_DIR") or "logs")


def find_sweep_roots(roots: Iterable[str | Path]) -> list[Path]:
    """Every folder holding a ``multirun.yaml`` at or below ``roots`` (sorted, no repeats)."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if (root / MULTIRUN).is_file():
            found.add(root.resolve())
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not skip_dir(d)]
            if MULTIRUN in filenames:
                found.add(Path(dirpath).resolve())
    return sorted(found)


def find_sweeps(roots: Iterable[str | Path]) -> list[Sweep]:
    """Read every sweep at or below ``roots``, oldest first."""
    sweep_roots = find_sweep_roots(roots)
    sweeps = [read_sweep(r, nested=sweep_roots) for r in sweep_roots]
    return sorted(sweeps, key=lambda s: (s.started, str(s.root)))


def latest_sweeps(sweeps: Sequence[Sweep]) -> dict[str, Sweep]:
    """The most recently launched sweep of each experiment, by experiment name."""
    latest: dict[str, Sweep] = {}
    for sweep in sorted(sweeps, key=lambda s: (s.started, str(s.root))):
        latest[sweep.experiment] = sweep
    return latest


def read_sweep(root: str | Path, nested: Sequence[Path] = ()) -> Sweep:
    """One sweep: its ``multirun.yaml`` and a row per job (see module docstring)."""
    root = Path(root).resolve()
    multirun = load_yaml(root / MULTIRUN)
    others = [n for n in map(Path, nested) if n != root and _is_below(n, root)]
    jobs = [j for j in job_dirs(root) if not any(_is_below(j, n) for n in others)]
    rows = [read_job(j, sweep=root) for j in jobs]
    expected = expected_jobs(multirun)
    ignored = 0
    if expected is not None:
        excluded = dirname_excluded(multirun)  # what Sweep.unnamed_keys returns
        keys = {job_key(r["overrides"], excluded) for r in rows}
        if keys & set(expected) or not rows:
            ignored = sum(job_key(r["overrides"], excluded) not in expected for r in rows)
            rows = [r for r in rows if job_key(r["overrides"], excluded) in expected]
            rows += [_not_started(o, root) for k, o in expected.items() if k not in keys]
    experiment = _experiment_name(rows, multirun, root)
    scale = _scale(rows, multirun)
    for row in rows:
        row["experiment"] = row["experiment"] or experiment
        row["scale"] = row["scale"] or scale
    runs = _frame(rows)
    return Sweep(root, experiment, scale, runs, multirun, ignored)


def find_runs(roots: Iterable[str | Path]) -> pd.DataFrame:
    """Every run below ``roots`` — sweep jobs and single runs — one row each.

    Sweep jobs carry the sweep's bookkeeping (never-started jobs included); single runs
    (``logs/runs/<name>/<time>/``) are read on their own.
    """
    roots = list(roots)
    sweeps = find_sweeps(roots)
    frames = [s.runs for s in sweeps]
    seen = {Path(p) for f in frames for p in f["path"] if isinstance(p, str)}
    loose = [
        read_job(j, sweep=None)
        for root in roots
        for j in job_dirs(root)
        if j.resolve() not in seen and not any(_is_below(j.resolve(), s.root) for s in sweeps)
    ]
    frames.append(_frame(loose))
    frames = [f for f in frames if len(f)]
    if not frames:
        return _frame([])
    return pd.concat(frames, ignore_index=True).sort_values("mtime", kind="stable")


# --------------------------------------------------------------------------- one job


def read_job(job: str | Path, sweep: Path | None) -> dict[str, Any]:
    """One row for a job folder, from its summary (or Hydra's files if it has none)."""
    job = Path(job).resolve()
    summary = _load_json(job / SUMMARY)
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    row.update(path=str(job), sweep=str(sweep) if sweep else None, mtime=_mtime(job / SUMMARY))
    row["job"] = str(job.relative_to(sweep)) if sweep else job.name
    if summary is None:
        overrides = load_yaml(job / OVERRIDES)
        row.update(
            status=NO_SUMMARY,
            overrides=list(overrides) if isinstance(overrides, list) else [],
            config=load_yaml(job / ".hydra" / "config.yaml"),
            choices={},
            metrics={},
            history=[],
            mtime=_mtime(job),
        )
        row["experiment"] = (row["config"] or {}).get("name")
        row["seed"] = (row["config"] or {}).get("seed")
        return row
    metrics = summary.get("metrics") or {}
    row.update(
        experiment=summary.get("name"),
        scale=(summary.get("choices") or {}).get("scale"),
        status=summary.get("status", FAILED),
        overrides=list(summary.get("overrides") or []),
        seed=summary.get("seed"),
        wall_time_s=summary.get("wall_time_s"),
        error=summary.get("error"),
        git_commit=summary.get("git_commit"),
        choices=dict(summary.get("choices") or {}),
        config=dict(summary.get("config") or {}),
        metrics=metrics,
        history=list(summary.get("history") or []),
    )
    for key in METRIC_COLUMNS:
        row[key] = metrics.get(key)
    return row


def _not_started(overrides: list[str], sweep: Path) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    row.update(
        status=NOT_STARTED,
        overrides=list(overrides),
        job=short_overrides(overrides),
        sweep=str(sweep),
        choices={},
        config={},
        metrics={},
        history=[],
        mtime=0.0,
    )
    return row


# --------------------------------------------------------------------------- helpers for figures


def column(runs: pd.DataFrame, key: str, default: Any = None) -> pd.Series:
    """A config value of every run as a Series (``"model.hidden"``, ``"corruption.q"``)."""
    return runs["config"].map(lambda c: dotted.get(c, key, default))


def choice(runs: pd.DataFrame, group: str, default: str | None = None) -> pd.Series:
    """The option chosen in a config group for every run (``"regularizer"`` → ``"l1"``)."""
    return runs["choices"].map(lambda c: (c or {}).get(group, default))


def short_overrides(overrides: Sequence[str], sep: str = ",") -> str:
    """The overrides that say what a job computed (``name=…``, ``trainer=…`` dropped)."""
    kept = [o for o in overrides if not is_how_override(o)]
    return sep.join(kept)


def computed_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """The same overrides as :func:`short_overrides`, as key (``+``/``~`` dropped) → value."""
    kept = (o for o in overrides if "=" in o and not is_how_override(o))
    return {override_key(o): o.partition("=")[2] for o in kept}


# --------------------------------------------------------------------------- private


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def _experiment_name(rows: list[dict[str, Any]], multirun: dict[str, Any], root: Path) -> str:
    names = [r["experiment"] for r in rows if r.get("experiment")]
    if names:
        return max(set(names), key=names.count)
    name = multirun.get("name") if isinstance(multirun, dict) else None
    if isinstance(name, str) and "${" not in name:
        return name
    parts = root.parts
    return parts[parts.index("sweeps") + 1] if "sweeps" in parts[:-1] else root.name


def _scale(rows: list[dict[str, Any]], multirun: dict[str, Any]) -> str | None:
    """The sweep's scale: the ``scale`` group's choice, else a ``scale=`` override."""
    for row in rows:
        if (row.get("choices") or {}).get("scale"):
            return str(row["choices"]["scale"])
    chosen = dotted.get(multirun, "hydra.runtime.choices.scale")
    if chosen:
        return str(chosen)
    for item in dotted.get(multirun, "hydra.overrides.task") or []:
        key, _, value = str(item).partition("=")
        if key.lstrip("+~") == "scale":
            return value
    return None


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _is_below(path: Path, parent: Path) -> bool:
    return path != parent and parent in path.parents
