"""Zhang et al. 2017 Fig 1b and 1c: steps to fit relative to true labels, and test error %,
against the label corruption level q, one series per variant (model + dropout / ℓ2); the
paper's Inception, AlexNet and MLP 1x512 curves dashed in grey."""

from __future__ import annotations

import pandas as pd

from reglab import published as pub
from reglab.report.plotting import FigureReport, errorbar, new_figure, published_line
from reglab.report.runinfo import architecture, regularization
from reglab.report.stats import DIFF, MEASURED, compare, exactness_text, summarise
from reglab.report.sweeps import choice, column

TITLE = "Zhang et al. 2017 Fig 1b, 1c"

#: Zhang et al. Fig 1b/c model names, keyed by reglab's ``model`` choice.
ZHANG_MODELS = {"mlp_1x512": "mlp_1x512", "small_alexnet": "alexnet", "inception": "inception"}


def build(runs: pd.DataFrame) -> FigureReport:
    """Fig 1b (relative time to fit) and 1c (test error %) against q, per variant."""
    experiment = "label_corruption"
    q = pd.to_numeric(column(runs, "corruption.q", 0.0), errors="coerce").fillna(0.0)
    model = choice(runs, "model").fillna(architecture(runs))
    variant = model.astype(str) + ", " + regularization(runs).astype(str)
    runs = runs.assign(q=q, model=model, variant=variant)
    runs = runs.assign(relative=_relative_steps(runs))
    fig, (ax_b, ax_c) = new_figure(2, width=13.0, height=6.8)
    colors = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    tables = []
    variants = sorted(runs["variant"].unique())
    for i, name in enumerate(variants):
        sub = runs[runs["variant"] == name]
        color = colors[i % len(colors)]
        rel = summarise(sub, "q", "relative")
        err = summarise(sub, "q", "test_error")
        if len(rel):
            errorbar(ax_b, rel, "q", f"{MEASURED}: {name}", color=color, marker="o")
        if len(err):
            errorbar(ax_c, err, "q", f"{MEASURED}: {name}", color=color, marker="o")
        key = _zhang_model(sub["model"].iloc[0])
        fitted = sub.groupby("q")["steps_to_fit"].agg(lambda s: f"{s.notna().sum()}/{len(s)}")
        tables.append(_label_corruption_table(name, key, rel, err, fitted))
    greys = {"inception": "0.15", "alexnet": "0.45", "mlp_1x512": "0.65"}
    markers = {"inception": "x", "alexnet": "+", "mlp_1x512": "d"}
    for model_key, grey in greys.items():
        published_line(
            ax_b,
            pub.series(experiment, f"time_to_overfit/{model_key}"),
            grey,
            marker=markers[model_key],
        )
        published_line(
            ax_c, pub.series(experiment, f"test_error/{model_key}"), grey, marker=markers[model_key]
        )
    ax_b.set_ylabel("time to fit / time with true labels")
    ax_b.set_title("Zhang et al. 2017 Fig 1b: convergence slowdown")
    ax_c.set_ylabel("test error %")
    ax_c.set_title("Zhang et al. 2017 Fig 1c: generalization error growth")
    ax_c.set_ylim(0.0, 100.0)
    for ax in (ax_b, ax_c):
        ax.set_xlabel("label corruption q")
        ax.set_xlim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13))  # below the data
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=_LC_COLUMNS)
    table.attrs.update(
        source="Zhang et al. 2017 Fig 1b/1c (CIFAR-10; the published model named in each row)",
        exactness=exactness_text("figure"),
    )
    caption = (
        "Zhang et al. 2017 Fig 1b: steps until the training set is fit, relative to the same "
        "net with true labels (q = 0), and Fig 1c: test error (%), against the label "
        "corruption level q; mean over seeds ±1 s.d. Grey dashed: the paper's Inception, "
        "AlexNet and MLP 1x512 on CIFAR-10 (read off figure; Fig 1c plots a fraction, shown "
        "x100). Regularized variants are separate series. A run that never fits has no "
        "steps to fit: the relative time averages the runs fitted (column runs fitted)."
    )
    return FigureReport(fig, caption, [("Fig 1b/1c against q", table)])


_LC_COLUMNS = [
    "variant",
    "q",
    "runs fitted",
    "relative time",
    "relative sd",
    "published relative time",
    "relative " + DIFF,
    "test error %",
    "test error sd",
    "seeds",
    "published test error %",
    "test error " + DIFF,
    "published model",
]


def _relative_steps(runs: pd.DataFrame) -> pd.Series:
    """steps_to_fit / the variant's mean steps_to_fit at q = 0 (NaN where unknown)."""
    steps = pd.to_numeric(runs["steps_to_fit"], errors="coerce")
    base = steps[runs["q"] == 0.0].groupby(runs["variant"]).mean()
    return steps / runs["variant"].map(base)


def _zhang_model(model: str) -> str:
    """The published model compared with: the same net where the paper has it, else MLP."""
    return ZHANG_MODELS.get(str(model), "mlp_1x512")


def _label_corruption_table(
    variant: str, model_key: str, rel: pd.DataFrame, err: pd.DataFrame, fitted: pd.Series
) -> pd.DataFrame:
    """One variant's rows; ``fitted`` (per q, "k/n") says how many runs the relative time
    averages: a run that never fits has no steps to fit."""
    p_rel = pub.series("label_corruption", f"time_to_overfit/{model_key}")
    p_err = pub.series("label_corruption", f"test_error/{model_key}")
    a = compare(rel.rename(columns={"q": "x"}), p_rel)
    b = compare(err.rename(columns={"q": "x"}), p_err)
    out = pd.DataFrame(
        {
            "variant": variant,
            "q": a["x"],
            "relative time": a["measured"],
            "relative sd": a["sd"],
            "published relative time": a["published"],
            "relative " + DIFF: a[DIFF],
        }
    )
    out = out.merge(
        pd.DataFrame(
            {
                "q": b["x"],
                "test error %": b["measured"],
                "test error sd": b["sd"],
                "seeds": b["seeds"],
                "published test error %": b["published"],
                "test error " + DIFF: b[DIFF],
            }
        ),
        on="q",
        how="outer",
    )
    out["published model"] = p_rel.attrs.get("model", model_key)
    out["runs fitted"] = out["q"].map(fitted)
    return out[_LC_COLUMNS]
