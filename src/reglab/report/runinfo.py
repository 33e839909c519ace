"""What a run was, read from what its summary records: the chosen options (``choices``,
Hydra's ``runtime.choices``), the resolved ``config`` and the command-line ``overrides``.

Nothing here guesses a choice from a class name: a summary without ``choices`` (written
before reglab recorded them) simply has no choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reglab import dotted
from reglab.datasets import DATASETS
from reglab.report.sweeps import column, computed_overrides


def has_dropout(runs: pd.DataFrame) -> pd.Series:
    """True where any retention probability (hidden or input) is below 1."""
    hidden = pd.to_numeric(column(runs, "dropout.p_hidden", 1.0), errors="coerce").fillna(1.0)
    inputs = pd.to_numeric(column(runs, "dropout.p_input", 1.0), errors="coerce").fillna(1.0)
    return (hidden < 1.0) | (inputs < 1.0)


def regularization(runs: pd.DataFrame) -> pd.Series:
    """'dropout p=0.5 + l2 λ=0.0005', 'max_norm c=2', 'none' … for each run.

    From ``dropout.p_*`` and the recorded ``regularizer`` choice; a penalty with λ = 0
    counts as none.
    """

    def describe(row: pd.Series) -> str:
        cfg = row["config"]
        parts = []
        for key, label in (("p_hidden", "dropout p"), ("p_input", "input dropout p")):
            p = dotted.get(cfg, f"dropout.{key}", 1.0)
            if p is not None and float(p) < 1.0:
                parts.append(f"{label}={float(p):g}")
        reg = (row["choices"] or {}).get("regularizer")
        settings = {
            k: v
            for k, v in (dotted.get(cfg, "regularizer") or {}).items()
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
        hidden = dotted.get(row["config"], "model.hidden")
        if isinstance(hidden, list) and hidden:
            if len(set(hidden)) == 1:
                return f"{len(hidden)}x{hidden[0]}"
            return "-".join(str(h) for h in hidden)
        return str((row["choices"] or {}).get("model", "model"))

    if runs.empty:
        return pd.Series(dtype=object)
    return runs.apply(describe, axis=1)


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


def train_size(config: dict[str, Any]) -> float:
    """Training images: ``data.train_size``, else the whole training split less the hold-out
    (NaN for a data set of unknown size)."""
    size = dotted.get(config, "data.train_size")
    if size is not None:
        return float(size)
    known = DATASETS.get(str(dotted.get(config, "data.name")))
    val = dotted.get(config, "data.val_size", 0) or 0
    return float(known.train_size - int(val)) if known else np.nan


def data_description(runs: pd.DataFrame) -> str:
    """The data these runs used, from their summaries: data set, training images, hold-out,
    input normalization, crop and binarization (a range or list where runs differ)."""
    if runs.empty:
        return ""
    configs = list(runs["config"])

    def values(key: str) -> list[Any]:
        return sorted({dotted.get(c, key) for c in configs}, key=str)

    names = [_title(n) for n in values("data.name") if n is not None]
    if not names:
        return "not recorded in their summaries"
    sizes = sorted({train_size(c) for c in configs} - {np.nan}, key=float)
    sizes = [s for s in sizes if s == s]
    if not sizes:
        size = "training set size unknown"
    elif len(sizes) == 1:
        size = f"{sizes[0]:,.0f} training images"
    else:
        size = f"{sizes[0]:,.0f}–{sizes[-1]:,.0f} training images ({len(sizes)} sizes)"
    parts = [" / ".join(names), size]
    held = values("data.val_size")
    parts.append(f"hold-out {', '.join(f'{v:,}' if v else '0' for v in held)}")
    norm = [v for v in values("data.normalize") if v is not None]
    parts.append("inputs: " + (" / ".join(map(_normalize_text, norm)) or "not recorded"))
    crops = [c for c in values("data.crop") if c]
    parts.append(f"centre crop {', '.join(map(str, crops))}" if crops else "no crop")
    binarize = values("data.binarize")
    if any(binarize):
        parts.append("binarized" if all(binarize) else "binarized in some runs")
    else:
        parts.append("not binarized")
    return ", ".join(parts)


def _normalize_text(value: Any) -> str:
    return {
        "unit": "raw pixels in [0, 1]",
        "standardize": "standardized (training-set mean and s.d.)",
        "per_image": "per-image whitening",
    }.get(value, f"normalize={value}")


def _title(name: Any) -> str:
    """A data set's name as the page shows it (``cifar10`` → ``CIFAR-10``)."""
    known = DATASETS.get(str(name))
    return known.title if known else str(name)
