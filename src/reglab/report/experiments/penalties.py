"""The lecture's penalties: test error % and the fraction of exactly-zero weights against λ
(log scale), one series per regularizer (subgradient ℓ1, proximal ℓ1, ℓ2). No paper
numbers exist for this experiment."""

from __future__ import annotations

import pandas as pd

from reglab.report.plotting import FigureReport, errorbar, new_figure
from reglab.report.stats import MEASURED, summarise
from reglab.report.sweeps import choice, column

TITLE = "l1, proximal l1 and l2 penalties"
COLORS = {"l1": "tab:red", "l1_proximal": "tab:green", "l2": "tab:blue"}


def build(runs: pd.DataFrame) -> FigureReport:
    """Test error % and exact zeros against λ (log x), per penalty."""
    lam = pd.to_numeric(column(runs, "regularizer.lam"), errors="coerce")
    runs = runs.assign(reg=choice(runs, "regularizer"), lam=lam)
    fig, (ax_err, ax_zero) = new_figure(2, width=13.0)
    tables = []
    for name in sorted(runs.loc[runs["lam"].notna(), "reg"].unique(), key=_order):
        sub = runs[(runs["reg"] == name) & runs["lam"].notna() & (runs["lam"] > 0)]
        err = summarise(sub, "lam", "test_error")
        zero = summarise(sub, "lam", "zero_weight_fraction")
        color = COLORS.get(name, "tab:gray")
        if len(err):
            errorbar(ax_err, err, "lam", f"{MEASURED}: {name}", color=color, marker="o")
        if len(zero):
            errorbar(ax_zero, zero, "lam", f"{MEASURED}: {name}", color=color, marker="o")
        table = err.rename(columns={"mean": "test error %", "sd": "sd", "n": "seeds"})
        table = table.merge(
            zero[["lam", "mean"]].rename(columns={"mean": "zero fraction"}), on="lam", how="outer"
        )
        tables.append(table.assign(regularizer=name))
    base = runs[runs["reg"].isin(["none", None]) | runs["lam"].isna()]
    if len(base):
        ax_err.axhline(
            pd.to_numeric(base["test_error"]).mean(),
            color="0.3",
            ls="--",
            label=f"{MEASURED}: no penalty",
        )
    for ax in (ax_err, ax_zero):
        ax.set_xscale("log")
        ax.set_xlabel("penalty strength λ (log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    ax_err.set_ylabel("test error %")
    ax_err.set_title("test error against λ")
    ax_zero.set_ylabel("fraction of weights exactly 0")
    top = pd.to_numeric(runs["zero_weight_fraction"], errors="coerce").max()
    top = min(1.0, max(0.05, 1.15 * top)) if top == top else 1.0
    ax_zero.set_ylim(-0.02 * top, top)
    ax_zero.set_title("exact zeros: subgradient l1 vs proximal l1 vs l2")
    cols = ["regularizer", "lam", "test error %", "sd", "seeds", "zero fraction"]
    table = pd.concat(tables, ignore_index=True)[cols] if tables else pd.DataFrame(columns=cols)
    table = table.rename(columns={"lam": "λ"})
    table.attrs["source"] = "no published numbers (the lecture's own experiment)"
    caption = (
        "l1 (subgradient), proximal l1 and l2 penalties: test error (%) and the fraction of "
        "weights that are exactly zero at the end of training, against the penalty strength λ "
        "(log scale); mean over seeds ±1 s.d. No published numbers exist for this experiment."
    )
    return FigureReport(fig, caption, [("Test error and exact zeros by λ", table)])


def _order(name: str) -> tuple[int, str]:
    order = {"l1": 0, "l1_proximal": 1, "l2": 2}
    return order.get(name, 9), str(name)
