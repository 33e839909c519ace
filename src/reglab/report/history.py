"""Learning curves from the summaries' ``history`` (one dict per evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def history_frame(history: Sequence[dict[str, Any]] | None) -> pd.DataFrame:
    """One run's history as a frame in step order (empty, with a step column, if none)."""
    frame = pd.DataFrame(list(history or []))
    if "step" not in frame:
        return pd.DataFrame({"step": pd.Series(dtype=float)})
    return frame.sort_values("step").reset_index(drop=True)


def history_column(frame: pd.DataFrame, key: str) -> pd.Series:
    """A history column; ``train/loss`` falls back to its ``_since_eval`` (the mean since the
    previous evaluation), ``_step`` and ``_epoch`` forms, in that order."""
    for name in (key, f"{key}_since_eval", f"{key}_step", f"{key}_epoch"):
        if name in frame:
            return pd.to_numeric(frame[name], errors="coerce")
    return pd.Series(np.nan, index=frame.index)


def interp_histories(
    runs: pd.DataFrame, keys: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Histories of several runs on one step grid: (steps, {key: runs × steps array}).

    Each run is linearly interpolated onto the union of all evaluated steps inside its own
    range (NaN outside), so runs evaluated at different steps still average.
    """
    tables = [t for t in map(history_frame, runs["history"]) if len(t)]
    if not tables:
        return np.array([]), {k: np.empty((0, 0)) for k in keys}
    steps = np.unique(np.concatenate([t["step"].to_numpy(dtype=float) for t in tables]))
    out: dict[str, np.ndarray] = {}
    for key in keys:
        rows = []
        for t in tables:
            col = history_column(t, key)
            ok = col.notna().to_numpy()
            if not ok.any():
                rows.append(np.full(len(steps), np.nan))
                continue
            xs, ys = t["step"].to_numpy(dtype=float)[ok], col.to_numpy(dtype=float)[ok]
            row = np.interp(steps, xs, ys)
            row[(steps < xs[0]) | (steps > xs[-1])] = np.nan
            rows.append(row)
        out[key] = np.vstack(rows)
    return steps, out


def first_step_reaching(frame: pd.DataFrame, accuracy: float) -> float:
    """The first evaluated step (of a :func:`history_frame`) whose test accuracy
    (100 − test/error) is ≥ ``accuracy``."""
    if "test/error" not in frame:
        return np.nan
    hit = frame["step"][100.0 - pd.to_numeric(frame["test/error"], errors="coerce") >= accuracy]
    return float(hit.iloc[0]) if len(hit) else np.nan
