"""Srivastava et al. 2014 Fig 9a: test and train error % against the retention probability p
of the hidden units, n fixed; the published curves dashed. Fig 9b (pn fixed) is drawn by
the same :func:`fig9` (:mod:`.dropout_rate_fixed_pn`)."""

from __future__ import annotations

import pandas as pd

from reglab import published as pub
from reglab.report.plotting import FigureReport, errorbar, new_figure, published_line
from reglab.report.stats import MEASURED, compare, seeds_note, summarise
from reglab.report.sweeps import column

TITLE = "Srivastava et al. 2014 Fig 9a"


def build(runs: pd.DataFrame) -> FigureReport:
    """Fig 9a: n fixed."""
    return fig9(runs, "dropout_rate_fixed_n")


def fig9(runs: pd.DataFrame, experiment: str) -> FigureReport:
    """Fig 9a (``…_n``) or 9b (``…_pn``): error % against p, per split, with the paper's."""
    panel = "9a" if experiment.endswith("_n") else "9b"
    runs = runs.assign(p=pd.to_numeric(column(runs, "dropout.p_hidden", 1.0), errors="coerce"))
    fig, ax = new_figure()
    tables: list[tuple[str, pd.DataFrame]] = []
    notes: list[str] = []
    for split, color, marker in (("test", "tab:blue", "o"), ("train", "tab:red", "s")):
        agg = summarise(runs, "p", f"{split}_error")
        if len(agg):
            errorbar(ax, agg, "p", f"{MEASURED}, {split} error", color=color, marker=marker)
        published = pub.series(experiment, f"{split}_error")
        published_line(ax, published, color)
        table = compare(agg.rename(columns={"p": "x"}), published).rename(columns={"x": "p"})
        tables.append((f"Fig {panel}: {split} error % against p", table))
        notes.append(seeds_note(agg))
    ax.set_xlabel("probability of retaining a unit (p)")
    ax.set_ylabel("classification error %")
    ax.set_xlim(0.0, 1.05)
    ax.set_ylim(bottom=0.0)
    title = "n fixed" if panel == "9a" else "pn fixed"
    ax.set_title(f"Srivastava et al. 2014 Fig {panel}: {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    caption = (
        f"Fig {panel}: test and training error (%) against the retention probability p of the "
        f"hidden units; measured: {notes[0]}; dashed: "
        f"{pub.series(experiment, 'test_error').attrs['source']} (read off the figure, about "
        "±0.05 %)."
    )
    return FigureReport(fig, caption, tables)
