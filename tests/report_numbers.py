"""The numbers a report section shows, as plain JSON: table cells and plotted series.

Used by ``tests/fixtures/record_report_numbers.py`` (recorded once, with the report as it
was before the per-experiment split) and by ``tests/unit/test_report_numbers.py`` (the report
of today must show the same numbers for the same summaries). Also holds the recorded
summaries of four real quick sweeps (``tests/fixtures/recorded_sweeps.json.gz``, written
by reglab at the commit their summaries name) and writes them back into sweep folders.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDED_SWEEPS = FIXTURES / "recorded_sweeps.json.gz"
NUMBERS = FIXTURES / "report_numbers.json"


def plain(value: Any) -> Any:
    """JSON-ready: floats to 10 significant digits, NaN/NA → None, numpy → Python."""
    if isinstance(value, np.ndarray | list | tuple):
        return [plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return None if math.isnan(v) else (float(f"{v:.10g}") if math.isfinite(v) else str(v))
    return str(value)


def table_numbers(title: str, df: pd.DataFrame) -> dict[str, Any]:
    return {
        "title": title,
        "columns": [str(c) for c in df.columns],
        "rows": [[plain(v) for v in row] for row in df.itertuples(index=False)],
    }


def figure_numbers(figure: Any) -> list[dict[str, Any]]:
    """Per axes: each line's (label, x, y), each bar's height, each collection's vertices."""
    out = []
    for ax in figure.axes:
        lines = [
            [
                str(ln.get_label()),
                plain(np.asarray(ln.get_xdata(), dtype=float)),
                plain(np.asarray(ln.get_ydata(), dtype=float)),
            ]
            for ln in ax.get_lines()
        ]
        bars = [
            plain([p.get_height() for p in c.patches])
            for c in ax.containers
            if hasattr(c, "patches")
        ]
        collections = []
        for c in ax.collections:
            paths = c.get_paths()
            verts = [plain(np.asarray(p.vertices, dtype=float).round(8)) for p in paths]
            offsets = plain(np.asarray(c.get_offsets(), dtype=float))
            collections.append([str(c.get_label()), verts, offsets])
        out.append({"lines": lines, "bars": bars, "collections": collections})
    return out


def report_numbers(setting: str, report: Any) -> dict[str, Any]:
    """One figure report (one setting of a sweep): its tables and plotted series."""
    return {
        "setting": setting,
        "tables": [table_numbers(t, df) for t, df in report.tables],
        "axes": figure_numbers(report.figure),
    }


# --------------------------------------------------------------------------- recorded sweeps


def write_recorded_sweeps(root: Path) -> dict[str, Path]:
    """Write the recorded real sweeps under ``root/<experiment>/quick``; their roots."""
    data = json.loads(gzip.decompress(RECORDED_SWEEPS.read_bytes()))
    out = {}
    for experiment, sweep in data.items():
        folder = root / experiment / "quick"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "multirun.yaml").write_text(sweep["multirun"], encoding="utf-8")
        for job, files in sweep["jobs"].items():
            (folder / job / ".hydra").mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (folder / job / name).write_text(text, encoding="utf-8")
        out[experiment] = folder
    return out
