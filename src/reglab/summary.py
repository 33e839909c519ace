"""summary.json: the one record of a run that sweeps and reports read.

Its ``status`` is ``completed``, ``failed``, ``diverged`` or ``interrupted``. Written
atomically (temporary file, then rename) so a run without a complete summary is never
mistaken for a finished one.
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
#: A run's ``status``: how training ended (a sweep's progress and reports read these).
COMPLETED, FAILED, DIVERGED, INTERRUPTED = "completed", "failed", "diverged", "interrupted"
STATUSES = (COMPLETED, FAILED, DIVERGED, INTERRUPTED)


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
    """The summary of a job that cannot train or crashed (the one writer of failures)."""
    summary = {
        "status": FAILED,
        "error": error,
        "overrides": list(overrides),
        "choices": dict(choices or {}),
        "metrics": {},
    }
    if config is not None:
        summary["config"] = config
    if write:
        write_json_atomic(Path(out_dir) / SUMMARY, summary)
    return summary


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
