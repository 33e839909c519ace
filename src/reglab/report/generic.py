"""The figure of a sweep without a module of its own: its grid's axes against test error.

A user's new sweep is visible before anyone writes a plotter. The axes are the settings
its jobs' recorded overrides vary (seed and result-neutral keys left out): the numeric one
with the most values is the x axis (log scale when it spans ≥ 2 decades), every
combination of the others is one series; points are the mean test error over seeds with
±1 s.d. error bars, and the table lists each grid point.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from reglab.report.plotting import FigureReport, finish, new_figure
from reglab.report.stats import MEASURED, seeds_note, summarise
from reglab.report.sweeps import computed_overrides

NO_NUMBERS = "no published numbers (no report module for this experiment)"


def grid_axes(runs: pd.DataFrame, ignore: Collection[str] = ()) -> pd.DataFrame:
    """One column per swept key (values parsed as numbers where they are), one row per run."""
    parsed = [computed_overrides(o or []) for o in runs["overrides"]]
    keys = sorted({k for p in parsed for k in p} - {"seed", *ignore})
    varying = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    return pd.DataFrame({k: [_value(p.get(k)) for p in parsed] for k in varying}, index=runs.index)


def build(runs: pd.DataFrame, ignore: Collection[str] = ()) -> FigureReport:
    """Test error % against the sweep's axes, mean ± s.d. over seeds."""
    axes = grid_axes(runs, ignore)
    keys = list(axes.columns)
    x = _x_axis(axes)
    series_keys = [k for k in keys if k != x]
    frame = pd.concat([runs[["test_error", "train_error"]], axes], axis=1)
    frame["_x"] = axes[x] if x else "all runs"
    numeric = x is not None and pd.api.types.is_numeric_dtype(axes[x])
    if not numeric:
        order = sorted(frame["_x"].astype(str).unique())
        frame["_pos"] = frame["_x"].astype(str).map(order.index)
    frame["_series"] = [
        ", ".join(f"{k}={_shown(v)}" for k, v in zip(series_keys, row, strict=True))
        for row in frame[series_keys].itertuples(index=False)
    ]
    fig, ax = new_figure()
    colors = [f"C{i}" for i in range(10)]
    for i, (name, sub) in enumerate(frame.groupby("_series", sort=True)):
        agg = summarise(sub, "_x" if numeric else "_pos", "test_error")
        label = f"{MEASURED}: {name}" if name else MEASURED
        if len(agg):
            xs = agg["_x" if numeric else "_pos"].to_numpy(dtype=float)
            ax.errorbar(
                xs,
                agg["mean"].to_numpy(dtype=float),
                yerr=agg["sd"].fillna(0.0).to_numpy(dtype=float),
                capsize=3,
                marker="o",
                color=colors[i % 10],
                label=label,
            )
    if numeric:
        values = axes[x].dropna().to_numpy(dtype=float)
        if len(values) and values.min() > 0 and values.max() / values.min() >= 100:
            ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(order)), order, rotation=15 if len(order) > 4 else 0)
    experiment = (
        str(runs["experiment"].dropna().iloc[0]) if runs["experiment"].notna().any() else "sweep"
    )
    finish(ax, x or "(no swept setting)", "test error %", f"{experiment}: test error")
    agg = (
        summarise(frame, [*keys], "test_error")
        if keys
        else summarise(frame.assign(run="all"), "run", "test_error")
    )
    table = agg.rename(columns={"mean": "test error %", "sd": "sd", "n": "seeds"})
    table.attrs["source"] = NO_NUMBERS
    swept = ", ".join(keys) or "nothing but the seed"
    caption = (
        f"Generic figure of the sweep '{experiment}' (no report module of its own yet): test "
        f"error (%) against its swept settings ({swept}); {seeds_note(agg)}."
    )
    return FigureReport(fig, caption, [("Test error % per grid point", table)])


def _x_axis(axes: pd.DataFrame) -> str | None:
    """The numeric key with the most distinct values, else the key with the most values."""
    if axes.empty or not len(axes.columns):
        return None
    numeric = [k for k in axes.columns if pd.api.types.is_numeric_dtype(axes[k])]
    pool = numeric or list(axes.columns)
    return max(pool, key=lambda k: (axes[k].nunique(), -list(axes.columns).index(k)))


def _value(text: Any) -> Any:
    """'0.5' → 0.5, '1e-4' → 0.0001, 'true' → 'true' (a category), None → None."""
    if text is None:
        return np.nan
    try:
        return float(text)
    except (TypeError, ValueError):
        return str(text)


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
