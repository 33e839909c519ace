"""summary.json: the one record of a run that sweeps and reports read.

This module owns its keys (:data:`SCHEMA`) and the status vocabulary. A summary is
written atomically (temporary file, then rename), so a run without a complete summary is
never mistaken for a finished one; every job that cannot train or crashed gets its
summary from :func:`failed_summary`, the one writer of failures.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SUMMARY = "summary.json"

#: A run's ``status`` in its summary: how training ended.
COMPLETED, FAILED, DIVERGED, INTERRUPTED = "completed", "failed", "diverged", "interrupted"
STATUSES = (COMPLETED, FAILED, DIVERGED, INTERRUPTED)
#: Statuses that end a job (an ``interrupted`` one resumes: SLURM requeues it).
FINAL = (COMPLETED, FAILED, DIVERGED)
#: A member while it trains, and one that reached ``fit_threshold`` (ends ``completed``).
RUNNING, FITTED = "running", "fitted"
#: What a process that skips a job another one trains returns (never written): the status
#: starts so, the owner follows in brackets (:func:`elsewhere_summary`).
RUNNING_ELSEWHERE = "running elsewhere"
#: What sweeps and reports say of a job folder without a summary (still running, or
#: killed), one with a summary they cannot read, and a job never started.
NO_SUMMARY, UNREADABLE, NOT_STARTED = "no summary", "unreadable", "not started"
#: Jobs that have not ended: a sweep is not finished while any job has one of these.
UNFINISHED = (NO_SUMMARY, NOT_STARTED, INTERRUPTED)

#: The keys of ``summary.json``. A failed job's has ``status``, ``error``, ``overrides``,
#: ``choices``, ``metrics`` (empty) and, where it is known, ``config``.
SCHEMA = {
    "status": "one of STATUSES",
    "error": "why the run did not complete (failed, diverged, interrupted)",
    "name": "the config's name: groups runs (runs/<name>/, sweeps/<name>/)",
    "overrides": "the job's command-line overrides",
    "choices": "config group → the option chosen (Hydra's own groups left out)",
    "seed": "the run's seed",
    "meta": "notes of the user's own (+meta.<key>=...)",
    "config": "the resolved config",
    "git_commit": "reglab's commit, if a checkout",
    "versions": "python, torch, pytorch_lightning, hydra, reglab",
    "resumed_from_step": "the step it resumed from (None: from scratch)",
    "stack": "id and size of the stack that trained it",
    "metrics": "final metrics (test_error, train_error, ..., steps)",
    "history": "one row per evaluation: step, epoch, metrics",
    "wall_time_s": "seconds from start to summary",
    "timing": "seconds per phase of its stack (reglab.timing), if measured",
}


def is_elsewhere(status: str | None) -> bool:
    """Is this the status of a job another process trains?"""
    return str(status or "").startswith(RUNNING_ELSEWHERE)


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def failed_summary(
    out_dir: str | Path,
    error: str,
    overrides: list[str],
    choices: dict[str, str] | None = None,
    config: dict | None = None,
    write: bool = True,
) -> dict:
    """The summary of a job that cannot train or crashed (the one writer of failures);
    written into ``out_dir`` unless ``write`` is false (a single run says why, in one line)."""
    summary = {
        "status": FAILED,
        "error": error,
        "overrides": list(overrides),
        "choices": {k: v for k, v in (choices or {}).items() if not str(k).startswith("hydra")},
        "metrics": {},
    }
    if config is not None:
        summary["config"] = config
    if write:
        write_json_atomic(Path(out_dir) / SUMMARY, summary)
    return summary


def elsewhere_summary(job_dir: str | Path, owner: Any, overrides: list[str]) -> dict:
    """What a process that skips a job ``owner`` (a :class:`reglab.locks.Owner`) trains
    returns in place of its summary (nothing is written)."""
    return {
        "status": f"{RUNNING_ELSEWHERE} ({owner})",
        "error": f"{job_dir} is being trained by {owner.describe()}",
        "overrides": list(overrides),
        "metrics": {},
    }


def read_summary(run_dir: Path) -> dict | None:
    """The run's summary, or None if it has none (or an unreadable one)."""
    try:
        return json.loads((Path(run_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import hydra
    import pytorch_lightning
    import torch

    try:
        reglab_version = version("reglab")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        reglab_version = "unknown"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
        "hydra": hydra.__version__,
        "reglab": reglab_version,
    }
