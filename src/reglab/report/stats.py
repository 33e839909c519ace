"""Statistics the figures and tables share: mean ± s.d. over seeds, measured vs published.

Measured values are always the mean over seeds with the sample standard deviation
(ddof 1; NaN for a single seed) and the number of seeds; published values come from
``published.yaml`` (:mod:`reglab.published`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from reglab import published as pub

MEASURED = "measured (reglab)"
DIFF = "measured − published"


def summarise(runs: pd.DataFrame, by: str | Sequence[str], value: str) -> pd.DataFrame:
    """Mean, standard deviation (ddof 1; NaN for one seed) and count of ``value`` per group."""
    keys = [by] if isinstance(by, str) else list(by)
    data = runs[[*keys, value]].copy()
    data[value] = pd.to_numeric(data[value], errors="coerce")
    data = data.dropna(subset=[value])
    if data.empty:
        return pd.DataFrame(columns=[*keys, "mean", "sd", "n"])
    grouped = data.groupby(keys, sort=True, dropna=False)[value]
    return grouped.agg(mean="mean", sd="std", n="count").reset_index()


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


def side_by_side(
    a: pd.DataFrame, b: pd.DataFrame, key: str, names: tuple[str, str]
) -> pd.DataFrame:
    """Two :func:`summarise` frames on one ``key``: ``<name>``, ``<name> sd``, ``<name> seeds``."""
    cols = {"mean": "", "sd": " sd", "n": " seeds"}
    left = a.rename(columns={c: f"{names[0]}{s}" for c, s in cols.items()})
    right = b.rename(columns={c: f"{names[1]}{s}" for c, s in cols.items()})
    if left.empty and right.empty:
        return pd.DataFrame(columns=[key, *left.columns[1:], *right.columns[1:]])
    return left.merge(right, on=key, how="outer").sort_values(key).reset_index(drop=True)


def seeds_note(agg: pd.DataFrame) -> str:
    """'mean over 3 seeds, error bars ±1 s.d.' for a :func:`summarise` frame."""
    if agg.empty:
        return "no completed runs"
    lo, hi = int(agg["n"].min()), int(agg["n"].max())
    if hi == 1:
        return "one seed per point (no spread)"
    seeds = f"{lo}" if lo == hi else f"{lo}–{hi}"
    return f"mean over {seeds} seeds, error bars ±1 s.d."
