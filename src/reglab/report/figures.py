"""One figure per experiment, mirroring the paper's, with the published numbers overlaid.

Each ``plot_<experiment>`` takes the *completed* runs of one sweep (a frame from
:mod:`reglab.report.sweeps`) and returns a :class:`FigureReport`: a matplotlib ``Figure``
(built with the Figure API, never pyplot), its caption, and the measured-vs-published
table(s). Measured values are the mean over seeds with ±1 standard deviation as error
bars or bands; published values (from ``published.yaml``) are drawn as a second, dashed
series whose legend names the source and whether the number is exact or read off a
figure. Where a paper gives no number, no published series is drawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reglab.report import published as pub
from reglab.report.sweeps import choice, column, computed_overrides, config_value

MEASURED = "measured (reglab)"
DIFF = "measured − published"

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
#: Zhang et al. Fig 1b/c model names, keyed by reglab's ``model`` choice.
ZHANG_MODELS = {"mlp_1x512": "mlp_1x512", "small_alexnet": "alexnet", "inception": "inception"}


@dataclass
class FigureReport:
    """A figure, its caption and its tables, ready for :class:`reglab.report.html.Section`."""

    stem: str
    figure: Figure
    caption: str
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``<out_dir>/<stem>.png`` and return its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.stem}.png"
        self.figure.savefig(path, format="png")
        return path


# =========================================================================== statistics


def summarise(runs: pd.DataFrame, by: str | Sequence[str], value: str) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; NaN for one seed) and count of ``value`` per group."""
    keys = [by] if isinstance(by, str) else list(by)
    data = runs[[*keys, value]].copy()
    data[value] = pd.to_numeric(data[value], errors="coerce")
    data = data.dropna(subset=[value])
    if data.empty:
        return pd.DataFrame(columns=[*keys, "mean", "sd", "n"])
    grouped = data.groupby(keys, sort=True, dropna=False)[value]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    return out


def compare(
    measured: pd.DataFrame, published: pd.DataFrame, key: str = "x", decimals: int = 6
) -> pd.DataFrame:
    """Outer join of measured (``key``, mean, sd, n) and published (``x``, ``y``) points.

    Columns: ``key``, measured, sd, seeds, published, and ``measured − published``
    (NaN where either side is missing). Source and exactness travel in ``attrs``.
    """
    left = measured.rename(columns={"mean": "measured", "sd": "sd", "n": "seeds"}).copy()
    right = published.rename(columns={"x": key, "y": "published"})[[key, "published"]].copy()
    for frame in (left, right):
        frame["_k"] = pd.to_numeric(frame[key], errors="coerce").round(decimals)
    merged = left.drop(columns=[key]).merge(right, on="_k", how="outer")
    merged[key] = merged["_k"]
    merged = merged.sort_values("_k").drop(columns="_k").reset_index(drop=True)
    merged[DIFF] = merged["measured"] - merged["published"]
    merged = merged[[key, "measured", "sd", "seeds", "published", DIFF]]
    merged["seeds"] = merged["seeds"].astype("Int64")
    merged.attrs.update(source=published.attrs.get("source", ""))
    merged.attrs.update(exactness=exactness_text(published.attrs.get("exactness", "")))
    return merged


def exactness_text(tag: str) -> str:
    """'figure' → 'figure: read off the paper's figure image (…)' (from published.yaml)."""
    if not tag:
        return ""
    return f"{tag}: {pub.load_published()['exactness_tags'].get(tag, '')}".rstrip(": ")


def published_label(series: pd.DataFrame) -> str:
    """Legend text of a published series: its label and how exactly it is known."""
    tag = series.attrs.get("exactness", "")
    how = {"figure": "read off figure", "exact": "exact", "quoted": "quoted table"}.get(tag, tag)
    return f"published: {series.attrs.get('label', '')} ({how})"


# =========================================================================== run attributes


def has_dropout(runs: pd.DataFrame) -> pd.Series:
    """True where any retention probability (hidden or input) is below 1."""
    hidden = pd.to_numeric(column(runs, "dropout.p_hidden", 1.0), errors="coerce").fillna(1.0)
    inputs = pd.to_numeric(column(runs, "dropout.p_input", 1.0), errors="coerce").fillna(1.0)
    return (hidden < 1.0) | (inputs < 1.0)


def regularization(runs: pd.DataFrame) -> pd.Series:
    """'dropout p=0.5 + l2 λ=0.0005', 'max_norm c=2', 'none' … for each run.

    From ``dropout.p_*`` and the regularizer choice; a penalty with λ = 0 counts as none.
    """

    def describe(row: pd.Series) -> str:
        cfg = row["config"]
        parts = []
        for key, label in (("p_hidden", "dropout p"), ("p_input", "input dropout p")):
            p = config_value(cfg, f"dropout.{key}", 1.0)
            if p is not None and float(p) < 1.0:
                parts.append(f"{label}={float(p):g}")
        reg = (row["choices"] or {}).get("regularizer") or _regularizer_class(cfg)
        settings = {
            k: v
            for k, v in (config_value(cfg, "regularizer") or {}).items()
            if k in ("lam", "lam_l1", "lam_l2", "c") and isinstance(v, int | float)
        }
        penalties = [v for k, v in settings.items() if k != "c"]
        if reg and reg != "none" and not (penalties and all(v == 0 for v in penalties)):
            shown = " ".join(f"{'λ' if k == 'lam' else k}={v:g}" for k, v in settings.items())
            parts.append(f"{reg} {shown}".strip())
        return " + ".join(parts) or "none"

    if runs.empty:
        return pd.Series(dtype=object)
    return runs.apply(describe, axis=1)


def architecture(runs: pd.DataFrame) -> pd.Series:
    """'3x1024' for equal hidden widths, '1024-1024-2048' otherwise; the model choice else."""

    def describe(row: pd.Series) -> str:
        hidden = config_value(row["config"], "model.hidden")
        if isinstance(hidden, list) and hidden:
            if len(set(hidden)) == 1:
                return f"{len(hidden)}x{hidden[0]}"
            return "-".join(str(h) for h in hidden)
        return str((row["choices"] or {}).get("model", "model"))

    if runs.empty:
        return pd.Series(dtype=object)
    return runs.apply(describe, axis=1)


#: The paper's narrow and wide hidden widths (Srivastava et al. 2014 Fig 4).
PAPER_WIDTHS = (1024, 2048)


def paper_architecture(runs: pd.DataFrame) -> pd.Series:
    """The paper's net a run stands for: a shrunk scale's ``architectures.widths`` (narrow,
    wide) map to the paper's (1024, 2048) with the same number of layers."""

    def describe(row: pd.Series) -> str:
        hidden = config_value(row["config"], "model.hidden")
        widths = config_value(row["config"], "architectures.widths")
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


def corruption_kind(runs: pd.DataFrame) -> pd.Series:
    """reglab's corruption choice ('none', 'random_labels', …), from choices or the config."""
    by_class = {
        "Corruption": "none",
        "ShuffledPixels": "shuffled_pixels",
        "RandomPixels": "random_pixels",
        "GaussianPixels": "gaussian",
    }

    def kind(row: pd.Series) -> str:
        chosen = (row["choices"] or {}).get("corruption")
        if chosen:
            return str(chosen)
        target = str(config_value(row["config"], "corruption._target_", "Corruption"))
        name = target.rsplit(".", 1)[-1]
        if name == "PartialLabels":
            q = float(config_value(row["config"], "corruption.q", 0.0))
            return "random_labels" if q >= 1.0 else "partial_labels"
        return by_class.get(name, name)

    if runs.empty:
        return pd.Series(dtype=object)
    return runs.apply(kind, axis=1)


def _regularizer_class(config: dict[str, Any]) -> str:
    target = str(config_value(config, "regularizer._target_", "") or "")
    name = target.rsplit(".", 1)[-1].lower()
    return {"regularizer": "none", "l1proximal": "l1_proximal", "maxnorm": "max_norm"}.get(
        name, name
    )


# =========================================================================== drawing helpers


def _errorbar(ax: Axes, agg: pd.DataFrame, x: str, label: str, **style: Any) -> None:
    sd = agg["sd"].fillna(0.0).to_numpy(dtype=float)
    ax.errorbar(
        agg[x].to_numpy(dtype=float),
        agg["mean"].to_numpy(dtype=float),
        yerr=sd,
        capsize=3,
        label=label,
        **style,
    )


def _published(ax: Axes, series: pd.DataFrame, color: str, x: str = "x", **style: Any) -> None:
    style = {"ls": "--", "marker": "x", "lw": 1.2, "ms": 6, "alpha": 0.9} | style
    ax.plot(
        series[x].to_numpy(dtype=float),
        series["y"].to_numpy(dtype=float),
        color=color,
        label=published_label(series),
        **style,
    )


def _new_figure(ncols: int = 1, width: float = 7.5, height: float = 4.6) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots(1, ncols)


def _seeds_note(agg: pd.DataFrame) -> str:
    if agg.empty:
        return "no completed runs"
    lo, hi = int(agg["n"].min()), int(agg["n"].max())
    if hi == 1:
        return "one seed per point (no spread)"
    seeds = f"{lo}" if lo == hi else f"{lo}–{hi}"
    return f"mean over {seeds} seeds, error bars ±1 s.d."


def _interp_histories(
    runs: pd.DataFrame, keys: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Histories of several runs on one step grid: (steps, {key: runs × steps array}).

    Each run is linearly interpolated onto the union of all evaluated steps inside its own
    range (NaN outside), so runs evaluated at different steps still average.
    """
    tables = []
    for history in runs["history"]:
        frame = _history_frame(history)
        if len(frame):
            tables.append(frame)
    if not tables:
        return np.array([]), {k: np.empty((0, 0)) for k in keys}
    steps = np.unique(np.concatenate([t["step"].to_numpy(dtype=float) for t in tables]))
    out: dict[str, np.ndarray] = {}
    for key in keys:
        rows = []
        for t in tables:
            col = _history_column(t, key)
            ok = col.notna().to_numpy()
            if not ok.any():
                rows.append(np.full(len(steps), np.nan))
                continue
            xs, ys = t["step"].to_numpy(dtype=float)[ok], col.to_numpy(dtype=float)[ok]
            row = np.interp(steps, xs, ys)
            row[(steps < xs[0]) | (steps > xs[-1])] = np.nan
            rows.append(row)
        out[key] = np.vstack(rows)
    return steps, out


def _history_column(frame: pd.DataFrame, key: str) -> pd.Series:
    """A history column; ``train/loss`` falls back to its ``_since_eval`` (the mean since the
    previous evaluation), ``_step`` and ``_epoch`` forms, in that order."""
    for name in (key, f"{key}_since_eval", f"{key}_step", f"{key}_epoch"):
        if name in frame:
            return pd.to_numeric(frame[name], errors="coerce")
    return pd.Series(np.nan, index=frame.index)


def _history_frame(history: Sequence[dict[str, Any]] | None) -> pd.DataFrame:
    """One run's history as a frame in step order (empty, with a step column, if none)."""
    frame = pd.DataFrame(list(history or []))
    if "step" not in frame:
        return pd.DataFrame({"step": pd.Series(dtype=float)})
    return frame.sort_values("step").reset_index(drop=True)


def _band(
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


# =========================================================================== Srivastava Fig 9


def plot_dropout_rate(runs: pd.DataFrame, experiment: str) -> FigureReport:
    """Srivastava et al. 2014 Fig 9a (n fixed) / 9b (pn fixed): error % against p."""
    panel = "9a" if experiment.endswith("_n") else "9b"
    runs = runs.assign(p=pd.to_numeric(column(runs, "dropout.p_hidden", 1.0), errors="coerce"))
    fig, ax = _new_figure()
    tables: list[tuple[str, pd.DataFrame]] = []
    notes: list[str] = []
    for split, color, marker in (("test", "tab:blue", "o"), ("train", "tab:red", "s")):
        agg = summarise(runs, "p", f"{split}_error")
        if len(agg):
            _errorbar(ax, agg, "p", f"{MEASURED}, {split} error", color=color, marker=marker)
        published = pub.series(experiment, f"{split}_error")
        _published(ax, published, color)
        table = compare(agg.rename(columns={"p": "x"}), published).rename(columns={"x": "p"})
        tables.append((f"Fig {panel}: {split} error % against p", table))
        notes.append(_seeds_note(agg))
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
    return FigureReport(f"{experiment}", fig, caption, tables)


# =========================================================================== Srivastava Fig 10


def plot_data_size(runs: pd.DataFrame, experiment: str = "data_size") -> FigureReport:
    """Srivastava et al. 2014 Fig 10: test error % against training-set size (log x)."""
    full = runs["config"].map(_full_train_size)
    size = pd.to_numeric(column(runs, "data.train_size"), errors="coerce").fillna(full)
    runs = runs.assign(size=size, dropout=has_dropout(runs))
    fig, ax = _new_figure()
    aggs = {}
    for flag, label, color, marker in (
        (False, "without dropout", "tab:red", "s"),
        (True, "with dropout", "tab:blue", "o"),
    ):
        agg = summarise(runs[runs["dropout"] == flag], "size", "test_error")
        aggs[flag] = agg
        if len(agg):
            _errorbar(ax, agg, "size", f"{MEASURED}, {label}", color=color, marker=marker)
    ax.set_xscale("log")
    ax.set_xlabel("number of training examples (log scale)")
    ax.set_ylabel("test error %")
    ax.set_title("Srivastava et al. 2014 Fig 10: effect of data set size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    table = _side_by_side(aggs[True], aggs[False], "size", ("with dropout", "without dropout"))
    table["gain (without − with)"] = table["without dropout"] - table["with dropout"]
    table.attrs["source"] = "no published numbers (Srivastava et al. 2014 Fig 10 has none)"
    gains = paired_gain(runs)
    caption = (
        "Fig 10: test error (%) with and without dropout against the number of training "
        f"examples; {_seeds_note(pd.concat([aggs[True], aggs[False]]))}. The paper gives no "
        "numbers for this figure, so none are drawn (its claim is quoted above). The second "
        "table pairs the arms by seed (one seed draws one subset for both) and gives the "
        "gain's spread over seeds."
    )
    return FigureReport(
        experiment,
        fig,
        caption,
        [("Fig 10: test error % by size", table), ("Gain from dropout, paired by seed", gains)],
    )


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
    out.attrs["source"] = "no published numbers (Srivastava et al. 2014 Fig 10 has none)"
    return out


def _full_train_size(config: dict[str, Any]) -> float:
    """Training-set size when ``data.train_size`` is null: MNIST's 60k minus the hold-out."""
    val = config_value(config, "data.val_size", 0) or 0
    return float(60_000 - int(val)) if config_value(config, "data.name") == "mnist" else np.nan


def _side_by_side(
    a: pd.DataFrame, b: pd.DataFrame, key: str, names: tuple[str, str]
) -> pd.DataFrame:
    cols = {"mean": "", "sd": " sd", "n": " seeds"}
    left = a.rename(columns={c: f"{names[0]}{s}" for c, s in cols.items()})
    right = b.rename(columns={c: f"{names[1]}{s}" for c, s in cols.items()})
    if left.empty and right.empty:
        return pd.DataFrame(columns=[key, *left.columns[1:], *right.columns[1:]])
    return left.merge(right, on=key, how="outer").sort_values(key).reset_index(drop=True)


# ======================================================================= Srivastava Fig 4, Tab 2/9


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


def plot_architectures(runs: pd.DataFrame, experiment: str = "architectures") -> FigureReport:
    """Srivastava et al. 2014 Fig 4 / Tables 2 and 9: test error % per net, ± dropout."""
    reg = choice(runs, "regularizer").fillna(runs["config"].map(_regularizer_class))
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
        f"with and without dropout; {_seeds_note(agg)}. Black bars: the published number "
        "for that net and regularization (Table 2 or 9, quoted); grey bands: the Fig 4 range "
        "at 10^6 updates (read off figure) without and with dropout."
    )
    return FigureReport(experiment, fig, caption, [("Test error % by architecture", table)])


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
    fig, ax = _new_figure(width=max(7.5, 1.2 * table["architecture"].nunique() + 4))
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


# =========================================================================== Zhang Fig 1a


def plot_randomization(runs: pd.DataFrame, experiment: str = "randomization") -> FigureReport:
    """Zhang et al. 2017 Fig 1a: training loss against thousands of steps, per corruption."""
    runs = runs.assign(kind=corruption_kind(runs))
    kinds = [k for k in CORRUPTION_LABELS if k in set(runs["kind"])]
    kinds += sorted(set(runs["kind"]) - set(kinds))
    published = pub.series(experiment, "steps_to_zero_loss")
    fig, (ax, ax_bar) = _new_figure(2, width=13.0)
    for kind in kinds:
        color = CORRUPTION_COLORS.get(kind, "tab:gray")
        steps, hist = _interp_histories(runs[runs["kind"] == kind], ["train/loss"])
        if len(steps):
            label = f"{MEASURED}: {CORRUPTION_LABELS.get(kind, kind)}"
            _band(ax, steps / 1000.0, hist["train/loss"], color, label)
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
    return FigureReport(experiment, fig, caption, [("Fig 1a: thousands of steps to fit", table)])


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


# =========================================================================== Zhang Fig 1b/c


def plot_label_corruption(runs: pd.DataFrame, experiment: str = "label_corruption") -> FigureReport:
    """Zhang et al. 2017 Fig 1b (relative time to fit) and 1c (test error %) against q."""
    q = pd.to_numeric(column(runs, "corruption.q", 0.0), errors="coerce").fillna(0.0)
    model = choice(runs, "model").fillna(architecture(runs))
    variant = model.astype(str) + ", " + regularization(runs).astype(str)
    runs = runs.assign(q=q, model=model, variant=variant)
    runs = runs.assign(relative=_relative_steps(runs))
    fig, (ax_b, ax_c) = _new_figure(2, width=13.0)
    colors = ["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown"]
    tables = []
    variants = sorted(runs["variant"].unique())
    for i, name in enumerate(variants):
        sub = runs[runs["variant"] == name]
        color = colors[i % len(colors)]
        rel = summarise(sub, "q", "relative")
        err = summarise(sub, "q", "test_error")
        if len(rel):
            _errorbar(ax_b, rel, "q", f"{MEASURED}: {name}", color=color, marker="o")
        if len(err):
            _errorbar(ax_c, err, "q", f"{MEASURED}: {name}", color=color, marker="o")
        key = _zhang_model(sub["model"].iloc[0])
        fitted = sub.groupby("q")["steps_to_fit"].agg(lambda s: f"{s.notna().sum()}/{len(s)}")
        tables.append(_label_corruption_table(name, key, rel, err, fitted))
    greys = {"inception": "0.15", "alexnet": "0.45", "mlp_1x512": "0.65"}
    markers = {"inception": "x", "alexnet": "+", "mlp_1x512": "d"}
    for model_key, grey in greys.items():
        _published(
            ax_b,
            pub.series(experiment, f"time_to_overfit/{model_key}"),
            grey,
            marker=markers[model_key],
        )
        _published(
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
        ax.legend(fontsize=7)
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
    return FigureReport(experiment, fig, caption, [("Fig 1b/1c against q", table)])


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


# =========================================================================== Ioffe & Szegedy Fig 1


PERCENTILES = ("probe/last_preact_p15", "probe/last_preact_p50", "probe/last_preact_p85")


def plot_batchnorm(runs: pd.DataFrame, experiment: str = "batchnorm") -> FigureReport:
    """Ioffe & Szegedy 2015 Fig 1: (a) test accuracy vs steps, (b, c) percentile bands.

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
    fig, (ax_a, ax_b, ax_c) = _new_figure(3, width=15.0, height=4.4)
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
            steps, hist = _interp_histories(sub, ["test/error", *PERCENTILES])
            if not len(steps):
                continue
            name = f"{label} ({variant})" if variant else label
            _band(ax_a, steps, 100.0 - hist["test/error"], color, f"{MEASURED}: {name}", ls=style)
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
    return FigureReport(experiment, fig, caption, tables)


_LINE_STYLES = ["-", "--", ":", "-."]


def swept_settings(runs: pd.DataFrame, exclude: Sequence[str] = ("seed",)) -> pd.Series:
    """Per run, its command-line overrides that differ between runs, as ``key=value, …``.

    An experiment's figure has its own axes (``exclude``); anything else swept beside them
    (extra CLI overrides add to a sweep's grid) must not be averaged into one curve.
    """
    parsed = [
        computed_overrides(overrides or [])
        for overrides in runs.get("overrides", pd.Series([[]] * len(runs)))
    ]
    keys = sorted({k for p in parsed for k in p} - set(exclude))
    varying = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    labels = [", ".join(f"{k}={p[k]}" for k in varying if k in p) for p in parsed]
    return pd.Series(labels, index=runs.index, dtype=object)


NO_BN_NUMBERS = "no published numbers (Ioffe & Szegedy 2015 Fig 1 gives curves only)"
ACCURACY_LEVELS = (90.0, 95.0, 97.0, 98.0)


def first_step_reaching(frame: pd.DataFrame, accuracy: float) -> float:
    """The first evaluated step (of a :func:`_history_frame`) whose test accuracy
    (100 − test/error) is ≥ ``accuracy``."""
    if "test/error" not in frame:
        return np.nan
    hit = frame["step"][100.0 - pd.to_numeric(frame["test/error"], errors="coerce") >= accuracy]
    return float(hit.iloc[0]) if len(hit) else np.nan


def updates_to_accuracy(runs: pd.DataFrame, networks: pd.Series) -> pd.DataFrame:
    """Per network and accuracy level: how many runs reached it, and after how many updates.

    "BN reaches a given accuracy in fewer steps" (Ioffe & Szegedy §4.1) read per seed; the
    mean is over the runs that reached the level (— in ``per seed``: never reached).
    """
    rows = []
    for network in sorted(networks.unique()):
        frames = [
            _history_frame(h) for h in runs[networks == network].sort_values("seed")["history"]
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
            series = [_history_column(_history_frame(h), key).dropna() for h in sub["history"]]
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


# =========================================================================== penalties


def plot_penalties(runs: pd.DataFrame, experiment: str = "penalties") -> FigureReport:
    """Test error % and fraction of exactly-zero weights against λ (log x), per penalty."""
    reg = choice(runs, "regularizer").fillna(runs["config"].map(_regularizer_class))
    lam = pd.to_numeric(column(runs, "regularizer.lam"), errors="coerce")
    runs = runs.assign(reg=reg, lam=lam)
    fig, (ax_err, ax_zero) = _new_figure(2, width=13.0)
    colors = {"l1": "tab:red", "l1_proximal": "tab:green", "l2": "tab:blue"}
    tables = []
    for name in sorted(runs.loc[runs["lam"].notna(), "reg"].unique(), key=_penalty_order):
        sub = runs[(runs["reg"] == name) & runs["lam"].notna() & (runs["lam"] > 0)]
        err = summarise(sub, "lam", "test_error")
        zero = summarise(sub, "lam", "zero_weight_fraction")
        color = colors.get(name, "tab:gray")
        if len(err):
            _errorbar(ax_err, err, "lam", f"{MEASURED}: {name}", color=color, marker="o")
        if len(zero):
            _errorbar(ax_zero, zero, "lam", f"{MEASURED}: {name}", color=color, marker="o")
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
    return FigureReport(experiment, fig, caption, [("Test error and exact zeros by λ", table)])


def _penalty_order(name: str) -> tuple[int, str]:
    order = {"l1": 0, "l1_proximal": 1, "l2": 2}
    return order.get(name, 9), str(name)


# =========================================================================== registry


PLOTTERS: dict[str, Callable[[pd.DataFrame, str], FigureReport]] = {
    "dropout_rate_fixed_n": plot_dropout_rate,
    "dropout_rate_fixed_pn": plot_dropout_rate,
    "data_size": plot_data_size,
    "architectures": plot_architectures,
    "randomization": plot_randomization,
    "label_corruption": plot_label_corruption,
    "batchnorm": plot_batchnorm,
    "penalties": plot_penalties,
}

#: Experiments in the order the report shows them.
EXPERIMENTS = tuple(PLOTTERS)

#: The paper figure each experiment mirrors, for headings.
PAPER_FIGURES = {
    "dropout_rate_fixed_n": "Srivastava et al. 2014 Fig 9a",
    "dropout_rate_fixed_pn": "Srivastava et al. 2014 Fig 9b",
    "data_size": "Srivastava et al. 2014 Fig 10",
    "architectures": "Srivastava et al. 2014 Fig 4, Tables 2 and 9",
    "randomization": "Zhang et al. 2017 Fig 1a",
    "label_corruption": "Zhang et al. 2017 Fig 1b, 1c",
    "batchnorm": "Ioffe & Szegedy 2015 Fig 1",
    "penalties": "l1, proximal l1 and l2 penalties",
}


#: Figures that draw settings swept beside their own grid themselves, in one figure: they
#: find each run's setting in the column :data:`EXTRA_SETTING`.
KEEP_EXTRA_SETTINGS_IN_ONE_FIGURE = frozenset({"batchnorm"})
EXTRA_SETTING = "extra setting"


def plot_experiment(experiment: str, runs: pd.DataFrame) -> FigureReport | None:
    """The paper's figure for ``experiment`` from its completed runs (None if unknown)."""
    plotter = PLOTTERS.get(experiment)
    return plotter(runs.reset_index(drop=True), experiment) if plotter else None


def plot_sweep(
    experiment: str,
    runs: pd.DataFrame,
    grid_keys: Collection[str] | None,
    ignore: Collection[str] = (),
) -> list[tuple[str, FigureReport]]:
    """The paper's figure once per setting swept beside the experiment's own grid.

    Extra command-line sweeps add to a sweep's grid (``ARGS="optimizer.lr=0.01,0.1"``);
    averaging over them would blend different experiments into one mean ± s.d., so each
    such setting (``"optimizer.lr=0.01"``) gets its own figure. ``grid_keys`` are the keys of
    the sweep's own ``hydra.sweeper.params``; where unknown (None), nothing is split.
    ``ignore``: keys that never change a result (paths, parallelism), which runs of one job
    may differ in. Returns (setting, figure) pairs, the setting ``""`` for one figure.
    """
    plotter = PLOTTERS.get(experiment)
    if plotter is None:
        return []
    if grid_keys is None:
        return [("", plotter(runs.reset_index(drop=True), experiment))]
    settings = swept_settings(runs, exclude=(*grid_keys, *ignore, "seed"))
    if experiment in KEEP_EXTRA_SETTINGS_IN_ONE_FIGURE:
        return [("", plotter(runs.assign(**{EXTRA_SETTING: settings}), experiment))]
    return [
        (setting, plotter(runs[settings == setting].reset_index(drop=True), experiment))
        for setting in sorted(settings.unique())
    ]
