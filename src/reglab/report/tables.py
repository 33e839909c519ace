"""The tables and folded details every section of the page shows, whatever its experiment:
the completed runs, the runs left out and why, and the sweep's details (folder, times,
command, commits, config). Keys that never change a result (:data:`reglab.rerun.HOW_KEYS`)
are listed apart from the config that made the runs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reglab import dotted
from reglab.report import sweeps as sw
from reglab.rerun import is_how_key
from reglab.summary import INTERRUPTED, NO_SUMMARY, NOT_STARTED


def rounded(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Float columns to ``digits`` significant digits, so λ = 1e-05 stays 1e-05 (attrs such as
    source and exactness kept)."""
    out = df.copy()
    for col in out.select_dtypes("float").columns:
        out[col] = out[col].map(lambda v: float(f"{v:.{digits}g}") if v == v else v)
    out.attrs = dict(df.attrs)
    return out


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per completed run: what it varied, its seed, errors and wall time."""
    cols = ["job", "seed", "test error %", "train error %", "steps", "wall time s"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    runs = runs.iloc[sorted(range(len(runs)), key=lambda i: _natural(runs["job"].iloc[i]))]
    return pd.DataFrame(
        {
            "job": runs["overrides"].map(sw.short_overrides),
            "seed": runs["seed"],
            "test error %": pd.to_numeric(runs["test_error"], errors="coerce"),
            "train error %": pd.to_numeric(runs["train_error"], errors="coerce"),
            "steps": pd.to_numeric(runs["steps"], errors="coerce").astype("Int64"),
            "wall time s": pd.to_numeric(runs["wall_time_s"], errors="coerce"),
        }
    )[cols].reset_index(drop=True)


def excluded_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Jobs left out of the figures, with why."""
    return pd.DataFrame(
        {
            "job": runs["overrides"].map(sw.short_overrides),
            "status": runs["status"],
            "reason": [_reason(r) for _, r in runs.iterrows()],
            "folder": runs["path"].map(
                lambda p: short_path(Path(p)) if isinstance(p, str) else "–"
            ),
        }
    )


def sweep_details(sweep: sw.Sweep) -> dict[str, Any]:
    """Folded key/value list: where, scale, times, command, and the config of the sweep."""
    done = sweep.completed
    details: dict[str, Any] = {
        "sweep folder": str(sweep.root),
        "scale": sweep.scale or "–",
        "launched": when(sweep.started),
        "jobs": ", ".join(f"{n} {k}" for k, n in sweep.status_counts().items()),
        "elapsed (launch to last summary)": duration(sweep.elapsed_s),
        "summed wall time": duration(sweep.wall_time_s),
        "command overrides": " ".join(sweep.sweep_overrides) or "–",
    }
    if sweep.ignored:
        details["ignored job folders"] = f"{sweep.ignored} (from an earlier sweep in this folder)"
    if len(done):
        commits = sorted({str(c) for c in done["git_commit"] if c})
        details["git commit"] = ", ".join(commits) or "–"
        common, varied = split_config(list(done["config"]))
        details |= {
            f"varied: {k}": ", ".join(map(str, v))
            for k, v in varied.items()
            if not is_how_key(k)  # per-job folders, thread counts: not what the runs varied
        }
        details |= {f"config: {k}": v for k, v in common.items() if not is_how_key(k)}
        details |= {f"ran with: {k}": v for k, v in common.items() if is_how_key(k)}
    return details


def split_config(configs: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, list]]:
    """Flattened config keys equal in every run, and the distinct values of the others."""
    flat = [dotted.flatten(c, keep_empty=True) for c in configs]
    keys = sorted({k for f in flat for k in f})
    common, varied = {}, {}
    for key in keys:
        values = [json.dumps(f.get(key), default=str) for f in flat]
        distinct = sorted(set(values))
        if len(distinct) == 1:
            common[key] = json.loads(distinct[0]) if distinct[0] != "null" else None
        else:
            varied[key] = sorted((json.loads(v) for v in distinct), key=_value_order)
    return common, varied


def _value_order(value: Any) -> tuple[int, Any]:
    """Numbers first, in numeric order; then everything else by its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _reason(row: pd.Series) -> str:
    if row["status"] == NOT_STARTED:
        return "asked for by the sweep, but no job folder exists"
    if row["status"] == NO_SUMMARY:
        return "job folder without summary.json: still running, or killed"
    if row["status"] == INTERRUPTED and not row.get("error"):
        return "interrupted: running the sweep again resumes it"
    return str(row.get("error") or row["status"])


def _natural(text: Any) -> list[Any]:
    """Sort key that orders 'size=500' before 'size=1000'."""
    parts = re.split(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", str(text))
    return [(0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)]


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def short_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "–"


def duration(seconds: float) -> str:
    if not seconds or seconds != seconds:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
