"""Srivastava et al. 2014 Fig 10: test error % against the training-set size (log scale),
with and without dropout, and the gain from dropout paired by seed. The paper gives no
numbers for this figure, so none are drawn."""

from __future__ import annotations

import pandas as pd

from reglab.report.plotting import FigureReport, errorbar, new_figure
from reglab.report.runinfo import has_dropout, train_size
from reglab.report.stats import MEASURED, seeds_note, side_by_side, summarise

TITLE = "Srivastava et al. 2014 Fig 10"
NO_NUMBERS = "no published numbers (Srivastava et al. 2014 Fig 10 has none)"


def build(runs: pd.DataFrame) -> FigureReport:
    """Fig 10: test error % against training-set size (log x), ± dropout."""
    runs = runs.assign(size=runs["config"].map(train_size), dropout=has_dropout(runs))
    fig, ax = new_figure()
    aggs = {}
    for flag, label, color, marker in (
        (False, "without dropout", "tab:red", "s"),
        (True, "with dropout", "tab:blue", "o"),
    ):
        agg = summarise(runs[runs["dropout"] == flag], "size", "test_error")
        aggs[flag] = agg
        if len(agg):
            errorbar(ax, agg, "size", f"{MEASURED}, {label}", color=color, marker=marker)
    ax.set_xscale("log")
    ax.set_xlabel("number of training examples (log scale)")
    ax.set_ylabel("test error %")
    ax.set_title("Srivastava et al. 2014 Fig 10: effect of data set size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    table = side_by_side(aggs[True], aggs[False], "size", ("with dropout", "without dropout"))
    table["gain (without − with)"] = table["without dropout"] - table["with dropout"]
    table.attrs["source"] = NO_NUMBERS
    caption = (
        "Fig 10: test error (%) with and without dropout against the number of training "
        f"examples; {seeds_note(pd.concat([aggs[True], aggs[False]]))}. The paper gives no "
        "numbers for this figure, so none are drawn (its claim is quoted above). The second "
        "table pairs the arms by seed (one seed draws one subset for both) and gives the "
        "gain's spread over seeds."
    )
    tables = [
        ("Fig 10: test error % by size", table),
        ("Gain from dropout, paired by seed", paired_gain(runs)),
    ]
    return FigureReport(fig, caption, tables)


def paired_gain(runs: pd.DataFrame) -> pd.DataFrame:
    """Gain from dropout (test error without − with, in points) per size, paired by seed.

    Both arms of one seed train on the same random subset, so the per-seed difference
    removes the subset's own difficulty from the spread. Columns: size, gain (mean), sd,
    seeds (pairs with both arms), per seed (the pairs' gains, by seed).
    """
    err = pd.to_numeric(runs["test_error"], errors="coerce")
    frame = runs.assign(err=err).dropna(subset=["err"])
    wide = frame.pivot_table(index=["size", "seed"], columns="dropout", values="err")
    if not {True, False} <= set(wide.columns):
        out = pd.DataFrame(columns=["size", "gain", "sd", "seeds", "per seed"])
    else:
        gain = (wide[False] - wide[True]).dropna().rename("gain").reset_index()
        out = (
            gain.groupby("size")
            .agg(gain=("gain", "mean"), sd=("gain", "std"), seeds=("gain", "count"))
            .reset_index()
        )
        per_seed = gain.groupby("size").apply(
            lambda g: ", ".join(f"{v:+.2f}" for v in g.sort_values("seed")["gain"]),
            include_groups=False,
        )
        out["per seed"] = out["size"].map(per_seed)
    out.attrs["source"] = NO_NUMBERS
    return out
