"""Ioffe & Szegedy 2015 Fig 1: (a) test accuracy against training steps with and without
batch normalization (mean ± s.d. band over seeds); (b, c) the 15th/50th/85th percentiles
of the input to one sigmoid of the last hidden layer. The paper gives no numbers; the
tables read the same histories (updates to reach an accuracy, percentile drift)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes

from reglab.report.experiments import EXTRA_SETTING
from reglab.report.history import (
    first_step_reaching,
    history_column,
    history_frame,
    interp_histories,
)
from reglab.report.plotting import FigureReport, band, new_figure
from reglab.report.runinfo import swept_settings
from reglab.report.stats import MEASURED, summarise
from reglab.report.sweeps import column

TITLE = "Ioffe & Szegedy 2015 Fig 1"
#: Settings swept beside model.batchnorm share one figure, one line style each.
KEEP_EXTRA_SETTINGS = True

PERCENTILES = ("probe/last_preact_p15", "probe/last_preact_p50", "probe/last_preact_p85")


def build(runs: pd.DataFrame) -> FigureReport:
    """Fig 1: (a) test accuracy against steps, (b, c) the percentiles of a sigmoid's input.

    Settings swept beside ``model.batchnorm`` (say ``optimizer.lr=0.01,0.05``) are kept
    apart: each gets its own line style and its own table rows.
    """
    bn = column(runs, "model.batchnorm", False).fillna(False).astype(bool)
    if EXTRA_SETTING in runs:  # from plot_sweep, which knows the sweep's own grid
        extra = runs[EXTRA_SETTING]
    else:
        extra = swept_settings(runs, exclude=("model.batchnorm", "seed"))
    runs = runs.assign(bn=bn, extra=extra)
    networks = runs["bn"].map({True: "with BN", False: "without BN"}) + extra.map(
        lambda e: f" ({e})" if e else ""
    )
    fig, (ax_a, ax_b, ax_c) = new_figure(3, width=15.0, height=4.4)
    variants = sorted(extra.unique())
    for flag, ax_p, label, base, cmap in (
        (False, ax_b, "without BN", "tab:red", "Reds"),
        (True, ax_c, "with BN", "tab:blue", "Blues"),
    ):
        for i, variant in enumerate(variants):
            style = _LINE_STYLES[i % len(_LINE_STYLES)]
            shade = colormaps[cmap](0.45 + 0.55 * i / max(1, len(variants) - 1))
            color = base if len(variants) == 1 else shade
            sub = runs[(runs["bn"] == flag) & (runs["extra"] == variant)]
            steps, hist = interp_histories(sub, ["test/error", *PERCENTILES])
            if not len(steps):
                continue
            name = f"{label} ({variant})" if variant else label
            band(ax_a, steps, 100.0 - hist["test/error"], color, f"{MEASURED}: {name}", ls=style)
            _percentile_panel(
                ax_p,
                steps,
                hist,
                color,
                ls=style,
                fill=len(variants) == 1,
                prefix=f"{variant}: " if variant else "",
            )
        ax_p.set_title(f"({'b' if not flag else 'c'}) last hidden layer input, {label}")
    ax_a.set_title("(a) test accuracy")
    ax_a.set_xlabel("training steps")
    ax_a.set_ylabel("test accuracy %")
    ax_a.grid(alpha=0.3)
    ax_a.legend(fontsize=8 if len(variants) == 1 else 6)
    agg = summarise(runs.assign(v=networks), "v", "test_error")
    table = agg.rename(
        columns={"v": "network", "mean": "final test error %", "sd": "sd", "n": "seeds"}
    )
    table["final test accuracy %"] = 100.0 - table["final test error %"]
    table.attrs["source"] = NO_BN_NUMBERS
    tables = [
        ("Final test error %", table),
        ("Updates to reach a test accuracy (Fig 1a)", updates_to_accuracy(runs, networks)),
        (
            "The sigmoid input's percentiles over training (Fig 1b, c)",
            percentile_drift(runs, networks),
        ),
    ]
    caption = (
        "Ioffe & Szegedy 2015 Fig 1: (a) test accuracy (%) against training steps with and "
        "without batch normalization (mean over seeds, band ±1 s.d.); (b, c) the 15th, 50th "
        "and 85th percentiles of the input to one unit of the last hidden nonlinearity on a "
        "fixed test batch (mean over seeds). The paper gives no numbers, so none are drawn "
        "(its claims are quoted above). The tables read the same histories: the first "
        "evaluation at which each run's test accuracy reached a level, and each percentile's "
        "first and last value and its range (max − min) over training."
    )
    return FigureReport(fig, caption, tables)


_LINE_STYLES = ["-", "--", ":", "-."]


NO_BN_NUMBERS = "no published numbers (Ioffe & Szegedy 2015 Fig 1 gives curves only)"
ACCURACY_LEVELS = (90.0, 95.0, 97.0, 98.0)


def updates_to_accuracy(runs: pd.DataFrame, networks: pd.Series) -> pd.DataFrame:
    """Per network and accuracy level: how many runs reached it, and after how many updates.

    "BN reaches a given accuracy in fewer steps" (Ioffe & Szegedy §4.1) read per seed; the
    mean is over the runs that reached the level (— in ``per seed``: never reached).
    """
    rows = []
    for network in sorted(networks.unique()):
        frames = [
            history_frame(h) for h in runs[networks == network].sort_values("seed")["history"]
        ]
        for level in ACCURACY_LEVELS:
            steps = np.array([first_step_reaching(f, level) for f in frames], dtype=float)
            reached = steps[~np.isnan(steps)]
            rows.append(
                {
                    "network": network,
                    "test accuracy ≥ %": level,
                    "reached": f"{len(reached)}/{len(steps)}",
                    "updates (mean of those reached)": reached.mean() if len(reached) else np.nan,
                    "per seed": ", ".join("—" if np.isnan(v) else f"{v:,.0f}" for v in steps),
                }
            )
    out = pd.DataFrame(rows)
    out.attrs["source"] = NO_BN_NUMBERS
    return out


def percentile_drift(runs: pd.DataFrame, networks: pd.Series) -> pd.DataFrame:
    """Per network and percentile: its first and last value and its range over training.

    Fig 1b, c's claim is that BN keeps these steady; the range (max − min over the run's
    evaluations, then the mean over seeds) measures how far each one moved.
    """
    rows = []
    for network in sorted(networks.unique()):
        sub = runs[networks == network]
        for key in PERCENTILES:
            series = [history_column(history_frame(h), key).dropna() for h in sub["history"]]
            series = [s for s in series if len(s)]
            if not series:
                continue
            rows.append(
                {
                    "network": network,
                    "percentile": key.rsplit("_p", 1)[1],
                    "first": np.mean([s.iloc[0] for s in series]),
                    "last": np.mean([s.iloc[-1] for s in series]),
                    "range (max − min)": np.mean([s.max() - s.min() for s in series]),
                    "seeds": len(series),
                }
            )
    out = pd.DataFrame(
        rows, columns=["network", "percentile", "first", "last", "range (max − min)", "seeds"]
    )
    out.attrs["source"] = NO_BN_NUMBERS
    return out


def _percentile_panel(
    ax: Axes,
    steps: np.ndarray,
    hist: dict[str, np.ndarray],
    color: str,
    ls: str = "-",
    fill: bool = True,
    prefix: str = "",
) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, mid, hi = (np.nanmean(hist[k], axis=0) for k in PERCENTILES)
    if np.all(np.isnan(mid)):
        ax.text(0.5, 0.5, "no probe/last_preact_* in history", ha="center", transform=ax.transAxes)
        return
    if fill:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.25, lw=0, label="15th–85th percentile")
    ax.plot(steps, mid, color=color, lw=1.6, ls=ls, label=f"{prefix}median")
    ax.plot(steps, lo, color=color, lw=0.8, ls=ls, label=None if fill else f"{prefix}15th, 85th")
    ax.plot(steps, hi, color=color, lw=0.8, ls=ls)
    ax.set_xlabel("training steps")
    ax.set_ylabel("input to the sigmoid")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8 if fill else 6)
