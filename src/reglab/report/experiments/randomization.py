"""Zhang et al. 2017 Fig 1a: training loss against thousands of steps for true labels and
each corruption (mean ± s.d. band over seeds), the paper's "loss ≈ 0 by" steps marked on
the x axis; right, steps to fit relative to true labels beside the paper's ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from reglab import published as pub
from reglab.report.history import interp_histories
from reglab.report.plotting import FigureReport, band, new_figure, published_label
from reglab.report.stats import DIFF, MEASURED, exactness_text, summarise
from reglab.report.sweeps import choice

TITLE = "Zhang et al. 2017 Fig 1a"

#: Zhang et al. Fig 1a's corruption names, keyed by reglab's ``corruption`` choice.
CORRUPTION_LABELS = {
    "none": "true labels",
    "random_labels": "random labels",
    "shuffled_pixels": "shuffled pixels",
    "random_pixels": "random pixels",
    "gaussian": "gaussian",
}
CORRUPTION_COLORS = {
    "none": "tab:blue",
    "random_labels": "tab:red",
    "shuffled_pixels": "tab:green",
    "random_pixels": "tab:purple",
    "gaussian": "tab:orange",
}


def build(runs: pd.DataFrame) -> FigureReport:
    """Fig 1a: training loss against thousands of steps, per corruption; steps to fit."""
    experiment = "randomization"
    runs = runs.assign(kind=choice(runs, "corruption", "not recorded"))
    kinds = [k for k in CORRUPTION_LABELS if k in set(runs["kind"])]
    kinds += sorted(set(runs["kind"]) - set(kinds))
    published = pub.series(experiment, "steps_to_zero_loss")
    fig, (ax, ax_bar) = new_figure(2, width=13.0)
    for kind in kinds:
        color = CORRUPTION_COLORS.get(kind, "tab:gray")
        steps, hist = interp_histories(runs[runs["kind"] == kind], ["train/loss"])
        if len(steps):
            label = f"{MEASURED}: {CORRUPTION_LABELS.get(kind, kind)}"
            band(ax, steps / 1000.0, hist["train/loss"], color, label)
    _published_zero_loss(ax, published)
    ax.set_xlabel("thousands of steps")
    ax.set_ylabel("average training loss (cross-entropy, nats)")
    ax.set_title("Zhang et al. 2017 Fig 1a: learning curves")
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    runs = runs.assign(kilo=pd.to_numeric(runs["steps_to_fit"], errors="coerce") / 1000.0)
    agg = summarise(runs, "kind", "kilo")
    table = _randomization_table(runs, kinds, agg, published)
    _steps_bars(ax_bar, table)
    caption = (
        "Zhang et al. 2017 Fig 1a: training loss against thousands of steps for each "
        "corruption: at each evaluation, the mean loss of the updates since the previous one "
        "(history train/loss_since_eval; the paper plots a running average), mean over seeds, "
        "band ±1 s.d. Triangles on the x axis and "
        "the right panel: the steps after which the paper's loss is about 0 "
        f"({published.attrs['source']}, Inception on CIFAR-10, read off figure); the dotted "
        "segment is the paper's random-label plateau at 2.3 until about 5k steps. Right: "
        "steps to fit relative to true labels (the paper's net and data differ from ours, "
        "the ratios are comparable). Measured 'steps to fit' is the first evaluated step with "
        "training error ≤ the run's fit_threshold (summary metric steps_to_fit); runs that "
        "never fit are counted apart."
    )
    return FigureReport(fig, caption, [("Fig 1a: thousands of steps to fit", table)])


def _published_zero_loss(ax: Axes, published: pd.DataFrame) -> None:
    labels = {v: k for k, v in CORRUPTION_LABELS.items()}
    label = published_label(published)
    for x_name, y in zip(published["x"], published["y"], strict=True):
        color = CORRUPTION_COLORS.get(labels.get(x_name, ""), "tab:gray")
        ax.plot([y], [0.0], marker="^", ms=10, color=color, clip_on=False, ls="none", label=label)
        label = None
    values = pub.values("randomization").set_index("name")
    if {"random_labels_plateau_loss", "random_labels_plateau_end"} <= set(values.index):
        level = values.loc["random_labels_plateau_loss", "value"]
        end = values.loc["random_labels_plateau_end", "value"]
        ax.plot(
            [0.0, end],
            [level, level],
            ls=":",
            lw=2,
            color=CORRUPTION_COLORS["random_labels"],
            label="published: random-label plateau (Fig 1a, read off figure)",
        )


def _randomization_table(
    runs: pd.DataFrame, kinds: list[str], agg: pd.DataFrame, published: pd.DataFrame
) -> pd.DataFrame:
    """Per corruption: thousands of steps to fit, absolute and relative to true labels."""
    pub_by_label = dict(zip(published["x"], published["y"], strict=True))
    pub_true = pub_by_label.get(CORRUPTION_LABELS["none"], np.nan)
    fitted = agg.set_index("kind")
    true_mean = fitted["mean"].get("none", np.nan)
    rows = []
    for kind in kinds:
        sub = runs[runs["kind"] == kind]
        mean = float(fitted["mean"].get(kind, np.nan))
        p = pub_by_label.get(CORRUPTION_LABELS.get(kind, ""), np.nan)
        rows.append(
            {
                "corruption": CORRUPTION_LABELS.get(kind, kind),
                "measured (k steps)": mean,
                "sd": float(fitted["sd"].get(kind, np.nan)),
                "runs fitted": f"{int(fitted['n'].get(kind, 0))}/{len(sub)}",
                "published (k steps)": p,
                DIFF: mean - p,
                "measured / true labels": mean / true_mean,
                "published / true labels": p / pub_true,
                "relative " + DIFF: mean / true_mean - p / pub_true,
                "final train loss": pd.to_numeric(sub["train_loss"], errors="coerce").mean(),
                "final test error %": pd.to_numeric(sub["test_error"], errors="coerce").mean(),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs.update(
        source=published.attrs["source"] + " (Inception on CIFAR-10)",
        exactness=exactness_text(published.attrs["exactness"]),
    )
    return table


def _steps_bars(ax: Axes, table: pd.DataFrame) -> None:
    """Steps to fit relative to true labels: comparable across nets and data sets."""
    if table.empty:
        return
    x = np.arange(len(table))
    ax.bar(
        x - 0.2,
        table["measured / true labels"].fillna(0.0),
        0.4,
        color="tab:blue",
        label=f"{MEASURED} (mean steps of fitted runs)",
    )
    ax.bar(
        x + 0.2,
        table["published / true labels"].fillna(0.0),
        0.4,
        color="white",
        edgecolor="black",
        hatch="//",
        label="published: Zhang et al. Fig 1a, Inception (read off figure)",
    )
    for xi, fitted in zip(x, table["runs fitted"], strict=True):
        if fitted.startswith("0/"):
            ax.text(xi - 0.2, 0.0, "never\nfit", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
    ax.set_xticks(x, table["corruption"], rotation=15)
    ax.set_ylabel("steps to fit / steps with true labels")
    ax.set_title("time to fit the training set, relative to true labels")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
