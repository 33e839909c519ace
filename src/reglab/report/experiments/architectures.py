"""Srivastava et al. 2014 Fig 4 / Tables 2 and 9: test error % of each MLP architecture with
and without dropout, as bars; the published single numbers (Tables 2, 9) as black ticks
and the Fig 4 ranges as grey bands. A shrunk scale's narrow/wide widths stand for the
paper's 1024/2048."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reglab import dotted
from reglab import published as pub
from reglab.report.plotting import FigureReport, new_figure
from reglab.report.runinfo import architecture, has_dropout, regularization
from reglab.report.stats import DIFF, MEASURED, seeds_note, summarise
from reglab.report.sweeps import choice

TITLE = "Srivastava et al. 2014 Fig 4, Tables 2 and 9"


#: The paper's narrow and wide hidden widths (Srivastava et al. 2014 Fig 4).
PAPER_WIDTHS = (1024, 2048)


def paper_architecture(runs: pd.DataFrame) -> pd.Series:
    """The paper's net a run stands for: a shrunk scale's ``architectures.widths`` (narrow,
    wide) map to the paper's (1024, 2048) with the same number of layers."""

    def describe(row: pd.Series) -> str:
        hidden = dotted.get(row["config"], "model.hidden")
        widths = dotted.get(row["config"], "architectures.widths")
        if (
            isinstance(hidden, list)
            and hidden
            and len(set(hidden)) == 1
            and isinstance(widths, list)
            and hidden[0] in widths[: len(PAPER_WIDTHS)]
        ):
            return f"{len(hidden)}x{PAPER_WIDTHS[widths.index(hidden[0])]}"
        return architecture(row.to_frame().T).iloc[0]

    if runs.empty:
        return pd.Series(dtype=object)
    return runs.apply(describe, axis=1)


def published_architecture_values() -> pd.DataFrame:
    """Published test errors per (architecture, dropout, regularizer), Tables 2 and 9.

    Columns: architecture, dropout, regularizer, low, high, source, exactness. Table 2 and
    Table 9 give single numbers (low = high); Fig 4 gives a range over six nets, matched
    to any 2–4 x 1024/2048 net without a single-number match (regularizer ``*``).
    """
    rows = []
    t2 = pub.table("architectures", "table2_mnist")
    for _, r in t2.iterrows():
        if r["units"] != "ReLU" or not str(r["method"]).startswith("Dropout NN"):
            continue
        layers, units = _parse_layers(str(r["architecture"]))
        if layers is None:
            continue
        reg = "max_norm" if "max-norm" in r["method"] else "none"
        rows.append((f"{layers}x{units}", True, reg, r["error"], r["error"], t2, r["method"]))
    t9 = pub.table("architectures", "table9_regularizers")
    methods = {
        "L2": (False, "l2"),
        "L2 + L1": (False, "elastic"),
        "max-norm": (False, "max_norm"),
        "dropout + L2": (True, "l2"),
        "dropout + max-norm": (True, "max_norm"),
    }
    for _, r in t9.iterrows():
        if r["method"] in methods:
            drop, reg = methods[r["method"]]
            rows.append(("1024-1024-2048", drop, reg, r["error"], r["error"], t9, r["method"]))
    fig4 = pub.table("architectures", "fig4_final_error")
    for _, r in fig4.iterrows():
        drop = r["training"] == "with dropout"
        for layers in (2, 3, 4):
            for units in (1024, 2048):
                rows.append(
                    (f"{layers}x{units}", drop, "*", r["error_low"], r["error_high"], fig4, "")
                )
    return pd.DataFrame(
        [
            {
                "architecture": a,
                "dropout": d,
                "regularizer": g,
                "low": float(lo),
                "high": float(hi),
                "source": _short_source(t) + (f" ({m})" if m else ""),
                "exactness": t.attrs["exactness"],
            }
            for a, d, g, lo, hi, t, m in rows
        ]
    )


def _short_source(table: pd.DataFrame) -> str:
    """'Srivastava et al. 2014, Table 2' from a published table's attrs."""
    return f"{pub.citation(table.attrs['paper']).split(',')[0]}, {table.attrs['where']}"


def _parse_layers(text: str) -> tuple[int | None, int | None]:
    """'3 layers, 1024 units' → (3, 1024); anything else → (None, None)."""
    parts = text.replace(",", " ").split()
    try:
        return int(parts[0]), int(parts[2])
    except (IndexError, ValueError):
        return None, None


def _match_published(arch: str, dropout: bool, reg: str, table: pd.DataFrame) -> pd.Series | None:
    same = table[(table["architecture"] == arch) & (table["dropout"] == dropout)]
    exact = same[same["regularizer"] == reg]
    if len(exact):
        return exact.iloc[0]
    ranged = same[same["regularizer"] == "*"]
    return ranged.iloc[0] if len(ranged) else None


def build(runs: pd.DataFrame) -> FigureReport:
    """Fig 4 / Tables 2 and 9: test error % per net, ± dropout, beside the published."""
    reg = choice(runs, "regularizer")
    runs = runs.assign(
        arch=architecture(runs),
        paper=paper_architecture(runs),
        dropout=has_dropout(runs),
        reg=reg,
        variant=regularization(runs),
    )
    agg = summarise(runs, ["arch", "paper", "dropout", "reg", "variant"], "test_error")
    published = published_architecture_values()
    rows = []
    for _, r in agg.iterrows():
        match = _match_published(r["paper"], bool(r["dropout"]), r["reg"], published)
        lo = match["low"] if match is not None else np.nan
        hi = match["high"] if match is not None else np.nan
        diff = r["mean"] - hi if r["mean"] > hi else (r["mean"] - lo if r["mean"] < lo else 0.0)
        rows.append(
            {
                "architecture": r["arch"],
                "paper's net": r["paper"],
                "regularization": r["variant"],
                "measured": r["mean"],
                "sd": r["sd"],
                "seeds": int(r["n"]),
                "published low": lo,
                "published high": hi,
                DIFF: diff if match is not None else np.nan,
                "published source": "" if match is None else f"{match['source']}",
                "exactness": "" if match is None else match["exactness"],
            }
        )
    table = pd.DataFrame(rows, columns=_ARCH_COLUMNS)
    table.attrs["source"] = (
        "published: Srivastava et al. 2014 Table 2 / Table 9 (quoted, single numbers) or the "
        "Fig 4 range over six nets at 10^6 updates (read off figure), for the paper's net of "
        "the same shape (a shrunk scale's narrow/wide widths stand for 1024/2048); "
        "difference = distance from the published number or range (0 inside the range)"
    )
    fig = _architecture_bars(table)
    caption = (
        "Srivastava et al. 2014 Fig 4 / Tables 2 and 9: test error (%) of each architecture "
        f"with and without dropout; {seeds_note(agg)}. Black bars: the published number "
        "for that net and regularization (Table 2 or 9, quoted); grey bands: the Fig 4 range "
        "at 10^6 updates (read off figure) without and with dropout."
    )
    return FigureReport(fig, caption, [("Test error % by architecture", table)])


_ARCH_COLUMNS = [
    "architecture",
    "paper's net",
    "regularization",
    "measured",
    "sd",
    "seeds",
    "published low",
    "published high",
    DIFF,
    "published source",
    "exactness",
]


def _architecture_bars(table: pd.DataFrame) -> Figure:
    fig, ax = new_figure(width=max(7.5, 1.2 * table["architecture"].nunique() + 4))
    archs = list(dict.fromkeys(table["architecture"]))
    variants = sorted(table["regularization"].unique(), key=lambda v: (v != "none", v))
    width = 0.8 / max(1, len(variants))
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    for band, (lo, hi) in _fig4_ranges().items():
        without = band == "without dropout"
        ax.axhspan(
            lo,
            hi,
            color="0.5" if without else "0.75",
            alpha=0.25,
            lw=0,
            label=f"published: Fig 4 range {lo:g}–{hi:g} %, {band} (read off figure)",
        )
    marked = False
    for i, variant in enumerate(variants):
        sub = table[table["regularization"] == variant].set_index("architecture")
        xs = np.array([archs.index(a) for a in sub.index]) + (i - (len(variants) - 1) / 2) * width
        ax.bar(
            xs,
            sub["measured"],
            width,
            yerr=sub["sd"].fillna(0.0),
            capsize=3,
            color=colors[i % len(colors)],
            alpha=0.85,
            label=f"{MEASURED}: {variant}",
        )
        point = sub["published low"] == sub["published high"]
        if point.any():
            ax.scatter(
                xs[point.to_numpy()],
                sub["published low"][point],
                marker="_",
                s=900 * width,
                color="black",
                lw=2.5,
                zorder=5,
                label=None if marked else "published: Table 2 / 9 (quoted table)",
            )
            marked = True
    paper = dict(zip(table["architecture"], table["paper's net"], strict=True))
    labels = [a if paper.get(a) == a else f"{a}\n(paper: {paper[a]})" for a in archs]
    ax.set_xticks(range(len(archs)), labels)
    ax.set_xlabel("hidden layers x units")
    ax.set_ylabel("test error %")
    ax.set_title("Srivastava et al. 2014 Fig 4 / Tables 2, 9: architectures")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


def _fig4_ranges() -> dict[str, tuple[float, float]]:
    t = pub.table("architectures", "fig4_final_error")
    return {r["training"]: (r["error_low"], r["error_high"]) for _, r in t.iterrows()}
