"""Srivastava et al. 2014 Table 9: regularizers compared on 784-1024-1024-2048-10 ReLU.

Each arm (a Table 9 row: ``comparison_arm``) sweeps a grid of strengths
(``comparison.strength``). As the paper chose each method's hyperparameters on a validation
set, an arm's reported test error is the one at its chosen setting: the strength with the
lowest validation error, mean over seeds (ties: the first in grid order; test error is never
looked at). Left: test error % at the chosen setting per arm, mean ± s.d. over seeds, the
published number as a black tick. Right: validation error % of every setting, the chosen
one circled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from reglab import dotted
from reglab import published as pub
from reglab.report.plotting import FigureReport, new_figure
from reglab.report.stats import DIFF, MEASURED, exactness_text
from reglab.report.sweeps import choice, column

TITLE = "Srivastava et al. 2014 Table 9"

#: Arms in Table 9's order (conf/comparison_arm/<arm>.yaml); others follow by name.
ARMS = ("l2", "l2_l1", "max_norm", "dropout_l2", "dropout_max_norm")
#: Grid rows from the least to the most regularization.
STRENGTHS = ("weak", "medium", "strong")
COLORS = {
    "l2": "tab:blue",
    "l2_l1": "tab:purple",
    "max_norm": "tab:green",
    "dropout_l2": "tab:orange",
    "dropout_max_norm": "tab:red",
}
_SYMBOLS = {"lam": "λ", "lam_l1": "λ₁", "lam_l2": "λ₂", "c": "c"}


def build(runs: pd.DataFrame) -> FigureReport:
    """Table 9: per arm, the setting chosen on validation and its test error % (± s.d.)."""
    runs = runs.assign(
        arm=choice(runs, "comparison_arm", "?"),
        strength=column(runs, "comparison.strength", "?"),
        setting=runs["config"].map(setting),
        val=pd.to_numeric(runs["val_error"], errors="coerce"),
        test=pd.to_numeric(runs["test_error"], errors="coerce"),
    )
    grid = settings_table(runs)
    chosen = chosen_table(grid)
    fig = _figure(grid, chosen)
    seeds = sorted({int(n) for n in grid["seeds"]}) if len(grid) else []
    caption = (
        "Srivastava et al. 2014 Table 9 on reglab: left, each method's test error (%) at the "
        "strength it chose on the validation set (lowest validation error, mean over "
        f"{'/'.join(map(str, seeds)) or 'no'} seeds), error bars ±1 s.d. over seeds; black "
        "ticks: the published error (Table 9, quoted). Right: validation error (%) of every "
        "strength in each method's grid, weak to strong regularization; circled: the chosen "
        "one. L2 + L1: L1 from the first update (the paper: towards the end of training); "
        "L2 + KL-sparsity is not run."
    )
    return FigureReport(
        fig,
        caption,
        [
            ("Table 9: test error % at the setting chosen on validation", chosen),
            ("Every setting: validation and test error %", grid),
        ],
    )


def setting(config: dict | None) -> str:
    """'λ=0.0005', 'λ₁=0.0001, λ₂=0.0005', 'c=3' from a run's regularizer strengths."""
    reg = dotted.get(config, "regularizer") or {}
    shown = [f"{_SYMBOLS[k]}={reg[k]:g}" for k in _SYMBOLS if isinstance(reg.get(k), int | float)]
    return ", ".join(shown) or "none"


def settings_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, strength): its setting, val and test error % (mean, s.d.), seeds,
    and whether the arm chose it."""
    cols = ["arm", "strength", "setting", "val error %", "val sd", "test error %", "test sd"]
    if runs.empty:
        return pd.DataFrame(columns=[*cols, "seeds", "chosen"])
    grouped = runs.groupby(["arm", "strength", "setting"], sort=False)
    table = grouped.agg(
        **{
            "val error %": ("val", "mean"),
            "val sd": ("val", "std"),
            "test error %": ("test", "mean"),
            "test sd": ("test", "std"),
            "seeds": ("test", "count"),
        }
    ).reset_index()
    table = table.sort_values(
        ["arm", "strength"], key=lambda s: s.map(_order), kind="stable"
    ).reset_index(drop=True)
    best = table.dropna(subset=["val error %"]).groupby("arm", sort=False)["val error %"].idxmin()
    table["chosen"] = table.index.isin(best.to_numpy())
    table.attrs["source"] = (
        "measured (reglab): mean and s.d. over seeds; chosen = the lowest mean validation "
        "error of the arm (ties: the first in grid order)"
    )
    return table


def chosen_table(grid: pd.DataFrame) -> pd.DataFrame:
    """Table 9 beside reglab: per published method, its arm's chosen setting and errors."""
    published = pub.table("regularizer_comparison", "table9_regularizers")
    chosen = grid[grid["chosen"]].set_index("arm") if len(grid) else grid
    arms = [a for a in published["arm"] if isinstance(a, str)]
    rows = []
    for _, r in published.iterrows():
        arm = r["arm"] if isinstance(r["arm"], str) else None
        rows.append(_row(r["method"], arm, chosen, r["error"]))
    for arm in sorted(set(chosen.index) - set(arms), key=_order):
        rows.append(_row(arm, arm, chosen, np.nan))  # an arm Table 9 does not have
    table = pd.DataFrame(rows)
    table.attrs["source"] = published.attrs["source"]
    table.attrs["exactness"] = exactness_text(published.attrs["exactness"])
    table.attrs["note"] = published.attrs.get("note", "")
    return table


def _row(method: str, arm: str | None, chosen: pd.DataFrame, published: float) -> dict:
    found = arm is not None and arm in chosen.index
    r = chosen.loc[arm] if found else None
    measured = float(r["test error %"]) if found else np.nan
    return {
        "method": method,
        "arm": arm or "not run",
        "chosen setting": f"{r['strength']}: {r['setting']}" if found else "",
        "val error %": float(r["val error %"]) if found else np.nan,
        MEASURED: measured,
        "sd": float(r["test sd"]) if found else np.nan,
        "seeds": int(r["seeds"]) if found else 0,
        "published": published,
        DIFF: measured - published,
    }


def _order(value: object) -> int:
    """Table 9's arm order, or weak → strong."""
    for names in (ARMS, STRENGTHS):
        if value in names:
            return names.index(value)
    return len(ARMS)


def _figure(grid: pd.DataFrame, chosen: pd.DataFrame) -> Figure:
    fig, (ax_test, ax_val) = new_figure(2, width=13.0)
    ran = chosen[chosen["seeds"] > 0].reset_index(drop=True)
    ys = np.arange(len(ran))
    colors = [COLORS.get(a, "tab:gray") for a in ran["arm"]]
    ax_test.barh(
        ys,
        ran[MEASURED],
        xerr=ran["sd"].fillna(0.0),
        capsize=3,
        color=colors,
        alpha=0.85,
        label=f"{MEASURED}, at the chosen setting",
    )
    has = ran["published"].notna().to_numpy()
    ax_test.scatter(
        ran["published"][has],
        ys[has],
        marker="|",
        s=400,
        lw=2.5,
        color="black",
        zorder=5,
        label="published: Table 9 (quoted table)",
    )
    labels = [f"{m}\n({s})" for m, s in zip(ran["method"], ran["chosen setting"], strict=True)]
    ax_test.set_yticks(ys, labels, fontsize=8)
    ax_test.invert_yaxis()
    ax_test.set_xlabel("test error %")
    ax_test.set_title("test error at each method's best validation setting")
    ax_test.grid(alpha=0.3, axis="x")
    top = np.nanmax([*(ran[MEASURED] + ran["sd"].fillna(0.0)), *ran["published"], 1.0])
    ax_test.set_xlim(0.0, 1.15 * top)
    # below the axes: beside the bars it covered the longest one whatever the data
    ax_test.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    names = dict(zip(chosen["arm"], chosen["method"], strict=True))
    arms = sorted(grid["arm"].unique(), key=_order)
    for i, arm in enumerate(arms):
        sub = grid[grid["arm"] == arm]
        shift = 0.05 * (i - (len(arms) - 1) / 2)  # side by side: the error bars stay apart
        xs = sub["strength"].map(_order).to_numpy(dtype=float) + shift
        color = COLORS.get(arm, "tab:gray")
        ax_val.errorbar(
            xs,
            sub["val error %"],
            yerr=sub["val sd"].fillna(0.0),
            color=color,
            marker="o",
            capsize=3,
            label=names.get(arm, arm),
        )
        best = sub["chosen"].to_numpy()
        ax_val.scatter(
            xs[best], sub["val error %"][best], s=220, facecolors="none", edgecolors=color,
            lw=2, zorder=5,
        )  # fmt: skip
    ax_val.set_xticks(range(len(STRENGTHS)), STRENGTHS)
    ax_val.set_xlabel("strength in the arm's grid (weak → strong regularization)")
    ax_val.set_yscale("log")  # a setting that does not learn (~90 %) beside ones near 3 %
    low, high = ax_val.get_ylim()
    ticks = (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100)
    ax_val.set_yticks([v for v in ticks if low <= v <= high])
    ax_val.yaxis.set_major_formatter(ScalarFormatter())
    ax_val.yaxis.set_minor_formatter(NullFormatter())
    ax_val.set_ylabel("validation error % (log scale)")
    ax_val.set_title("the choice: validation error of every setting (circled: chosen)")
    ax_val.grid(alpha=0.3)
    ax_val.legend(fontsize=8)
    return fig
