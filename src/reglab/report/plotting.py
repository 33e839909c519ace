"""Drawing helpers every experiment's figure uses (matplotlib's Figure API, never pyplot).

Measured series are the mean over seeds with ±1 s.d. error bars (:func:`errorbar`) or
bands (:func:`band`); a published series (:func:`published_line`) is dashed, with black
crosses, and its legend says ``published: <source> (<how exactly it is known>)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reglab.figures import DPI


@dataclass
class FigureReport:
    """What an experiment module's ``build`` returns: one figure, its caption, its tables.

    ``tables`` are ``(title, DataFrame)`` pairs; a frame's ``attrs["source"]`` (and
    ``attrs["exactness"]``) is printed under it, e.g. "no published numbers (…)".
    ``stem`` names the PNG; the report sets it.
    """

    figure: Figure
    caption: str
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    stem: str = "figure"

    def save(self, out_dir: str | Path) -> Path:
        """Write ``<out_dir>/<stem>.png`` (at :data:`reglab.figures.DPI`) and return its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.stem}.png"
        self.figure.savefig(path, format="png", dpi=DPI)
        return path


def new_figure(ncols: int = 1, width: float = 7.5, height: float = 4.6) -> tuple[Figure, Any]:
    """A constrained-layout figure with ``ncols`` panels side by side: (figure, axes)."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots(1, ncols)


def errorbar(ax: Axes, agg: pd.DataFrame, x: str, label: str, **style: Any) -> None:
    """A :func:`~reglab.report.stats.summarise` frame: mean with ±1 s.d. error bars."""
    sd = agg["sd"].fillna(0.0).to_numpy(dtype=float)
    ax.errorbar(
        agg[x].to_numpy(dtype=float),
        agg["mean"].to_numpy(dtype=float),
        yerr=sd,
        capsize=3,
        label=label,
        **style,
    )


def published_label(series: pd.DataFrame) -> str:
    """Legend text of a published series: its label and how exactly it is known."""
    tag = series.attrs.get("exactness", "")
    how = {"figure": "read off figure", "exact": "exact", "quoted": "quoted table"}.get(tag, tag)
    return f"published: {series.attrs.get('label', '')} ({how})"


def published_line(ax: Axes, series: pd.DataFrame, color: str, x: str = "x", **style: Any) -> None:
    """A published series (``x``, ``y``), dashed with crosses, labelled by its source."""
    style = {"ls": "--", "marker": "x", "lw": 1.2, "ms": 6, "alpha": 0.9} | style
    ax.plot(
        series[x].to_numpy(dtype=float),
        series["y"].to_numpy(dtype=float),
        color=color,
        label=published_label(series),
        **style,
    )


def band(
    ax: Axes, x: np.ndarray, values: np.ndarray, color: str, label: str, ls: str = "-"
) -> None:
    """Mean line with a ±1 s.d. band over runs (rows of ``values``)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns with 0 or 1 runs
        counts = np.sum(~np.isnan(values), axis=0)
        mean = np.nanmean(np.where(counts > 0, values, 0.0), axis=0)
        sd = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.zeros_like(mean)
    mean[counts == 0] = np.nan
    sd = np.nan_to_num(sd)
    ax.plot(x, mean, color=color, lw=1.6, ls=ls, label=label)
    if values.shape[0] > 1:
        ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)


def finish(ax: Axes, xlabel: str, ylabel: str, title: str, fontsize: int = 8) -> None:
    """Axis labels, title, a light grid and the legend (if anything is labelled)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize)
