"""Typed access to the published numbers in ``published.yaml``.

The report sets every measured curve beside the paper's own number (Srivastava et al. 2014,
Zhang et al. 2017, Ioffe & Szegedy 2015, Arpit et al. 2017). Keeping those numbers in one
validated data file, each with its source and how exactly it is known (``exact`` / ``figure``
/ ``quoted``), lets the report say how much a gap between the two curves can mean.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

EXACTNESS_TAGS = ("exact", "figure", "quoted")
ENTRY_KINDS = ("series", "tables", "values", "claims", "protocol")
EXPERIMENT_KINDS = ("sweep", "note")
_DATA_FILE = "published.yaml"


# --------------------------------------------------------------------------- loading


def load_published(path: str | Path | None = None) -> dict[str, Any]:
    """Return the whole validated data file as a dict (a fresh copy, safe to mutate).

    ``path`` overrides the packaged ``published.yaml`` (used by tests to check that the
    validation rejects broken files).
    """
    if path is not None:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        validate(data)
        return data
    return copy.deepcopy(_load_packaged())


@lru_cache(maxsize=1)
def _load_packaged() -> dict[str, Any]:
    """Read and validate the packaged file once; callers get deep copies."""
    text = resources.files(__package__).joinpath(_DATA_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    validate(data)
    return data


# --------------------------------------------------------------------------- validation


def validate(data: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first entry that lacks a source, tag, or unit."""
    if not isinstance(data, dict) or "experiments" not in data or "papers" not in data:
        raise ValueError("published data needs top-level 'papers' and 'experiments'")
    papers = data["papers"]
    for exp_name, exp in data["experiments"].items():
        if exp.get("kind") not in EXPERIMENT_KINDS:
            raise ValueError(f"{exp_name}: kind must be one of {EXPERIMENT_KINDS}")
        unknown = set(exp) - set(ENTRY_KINDS) - {"kind", "title"}
        if unknown:
            raise ValueError(f"{exp_name}: unknown keys {sorted(unknown)}")
    for exp_name, kind, name, entry in iter_entries(data):
        where = f"{exp_name}/{kind}/{name}"
        _check_source(where, entry, papers)
        _CHECKS[kind](where, entry)


def _check_source(where: str, entry: dict[str, Any], papers: dict[str, str]) -> None:
    """Every number must say where it comes from and how exactly it is known."""
    source = entry.get("source") or {}
    if source.get("paper") not in papers:
        raise ValueError(f"{where}: source.paper must be one of {sorted(papers)}")
    if not str(source.get("where", "")).strip():
        raise ValueError(f"{where}: source.where (table/figure/section) is missing")
    if entry.get("exactness") not in EXACTNESS_TAGS:
        raise ValueError(f"{where}: exactness must be one of {EXACTNESS_TAGS}")


def _check_series(where: str, entry: dict[str, Any]) -> None:
    for key in ("label", "x_label", "x_unit", "y_label", "y_unit"):
        if not str(entry.get(key, "")).strip():
            raise ValueError(f"{where}: '{key}' is missing")
    x, y = entry.get("x"), entry.get("y")
    if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y) or not x:
        raise ValueError(f"{where}: x and y must be non-empty lists of equal length")
    if not all(isinstance(v, int | float) for v in y):
        raise ValueError(f"{where}: y values must be numbers")
    _check_percent(where, entry["y_unit"], y)


def _check_table(where: str, entry: dict[str, Any]) -> None:
    columns, rows = entry.get("columns"), entry.get("rows")
    if not columns or not rows or any(len(r) != len(columns) for r in rows):
        raise ValueError(f"{where}: every row needs one cell per column")
    units = entry.get("column_units") or {}
    if not units or set(units) - set(columns):
        raise ValueError(f"{where}: column_units must name existing columns")
    for col, unit in units.items():
        i = columns.index(col)
        _check_percent(f"{where}[{col}]", unit, [r[i] for r in rows if r[i] is not None])


def _check_value(where: str, entry: dict[str, Any]) -> None:
    if not isinstance(entry.get("value"), int | float) or not entry.get("unit"):
        raise ValueError(f"{where}: needs a numeric 'value' and a 'unit'")


def _check_text(where: str, entry: dict[str, Any]) -> None:
    if not str(entry.get("text", "")).strip():
        raise ValueError(f"{where}: 'text' is missing")


def _check_percent(where: str, unit: str, numbers: list[Any]) -> None:
    """Percent units must hold percents: catches a fraction such as .13 stored as 0.13."""
    if "%" not in unit:
        return
    if any(not 0.0 <= float(v) <= 100.0 for v in numbers):
        raise ValueError(f"{where}: a value in % lies outside [0, 100]")
    if numbers and max(float(v) for v in numbers) <= 1.0 and "fraction" in unit:
        raise ValueError(f"{where}: looks like a fraction stored under a % unit")


_CHECKS = {
    "series": _check_series,
    "tables": _check_table,
    "values": _check_value,
    "claims": _check_text,
    "protocol": _check_text,
}


def iter_entries(
    data: dict[str, Any] | None = None,
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """Yield ``(experiment, kind, name, entry)`` for every entry; list items are named by index."""
    data = _load_packaged() if data is None else data
    for exp_name, exp in data["experiments"].items():
        for kind in ENTRY_KINDS:
            block = exp.get(kind) or {}
            items = block.items() if isinstance(block, dict) else enumerate(block)
            for name, entry in items:
                yield exp_name, kind, str(name), entry


# --------------------------------------------------------------------------- accessors


def experiments(kind: str | None = None) -> list[str]:
    """Experiment names, optionally only those of one kind (``sweep`` or ``note``)."""
    exps = _load_packaged()["experiments"]
    return [name for name, exp in exps.items() if kind is None or exp["kind"] == kind]


def experiment_title(experiment: str) -> str:
    """Human-readable title of an experiment, for section headings."""
    return str(_experiment(experiment)["title"])


def series_names(experiment: str) -> list[str]:
    """Names accepted by :func:`series` for this experiment (may be empty)."""
    return list(_experiment(experiment).get("series") or {})


def series(experiment: str, name: str) -> pd.DataFrame:
    """One published curve as a DataFrame with columns ``x`` and ``y``.

    Metadata travel in ``df.attrs``: label, source (a readable citation), paper, where,
    exactness, x_label, x_unit, y_label, y_unit and model (if any).
    """
    entry = _entry(experiment, "series", name)
    df = pd.DataFrame({"x": entry["x"], "y": [float(v) for v in entry["y"]]})
    df.attrs.update(_metadata(entry))
    for key in ("x_label", "x_unit", "y_label", "y_unit", "model"):
        if key in entry:
            df.attrs[key] = entry[key]
    return df


def table_names(experiment: str) -> list[str]:
    """Names accepted by :func:`table` for this experiment (may be empty)."""
    return list(_experiment(experiment).get("tables") or {})


def table(experiment: str, name: str) -> pd.DataFrame:
    """One published table; ``df.attrs`` carries source metadata and ``column_units``."""
    entry = _entry(experiment, "tables", name)
    df = pd.DataFrame(entry["rows"], columns=entry["columns"])
    df.attrs.update(_metadata(entry))
    df.attrs["column_units"] = dict(entry["column_units"])
    if "note" in entry:
        df.attrs["note"] = entry["note"]
    return df


def values(experiment: str) -> pd.DataFrame:
    """Single published numbers of an experiment: columns name, value, unit, label,
    exactness, source (empty frame with those columns when there are none)."""
    rows = [
        {"name": name, "value": e["value"], "unit": e["unit"], **_metadata(e)}
        for name, e in (_experiment(experiment).get("values") or {}).items()
    ]
    cols = ["name", "value", "unit", "label", "exactness", "source", "paper", "where"]
    return pd.DataFrame(rows, columns=cols)


def claims(experiment: str) -> list[str]:
    """The papers' statements without comparable numbers, each ending with its source."""
    return [_with_source(c) for c in _experiment(experiment).get("claims") or []]


def protocol(experiment: str) -> list[str]:
    """How the papers ran the experiment, each paragraph ending with its source."""
    return [_with_source(p) for p in _experiment(experiment).get("protocol") or []]


def protocol_settings(experiment: str) -> list[dict[str, Any]]:
    """The numbers each protocol paragraph states, one dict per paragraph.

    Not merged on purpose: the authors' example config (max-norm 3) must not silently
    override the paper's own protocol (max-norm c = 2). Each item has keys ``settings``,
    ``exactness``, ``paper`` and ``where``.
    """
    return [
        {
            "settings": copy.deepcopy(p.get("settings") or {}),
            "exactness": p["exactness"],
            "paper": p["source"]["paper"],
            "where": p["source"]["where"],
        }
        for p in _experiment(experiment).get("protocol") or []
    ]


def citation(paper: str) -> str:
    """Full citation string for a paper key such as ``srivastava2014``."""
    return str(_load_packaged()["papers"][paper])


# --------------------------------------------------------------------------- helpers


def _experiment(experiment: str) -> dict[str, Any]:
    exps = _load_packaged()["experiments"]
    if experiment not in exps:
        raise KeyError(f"unknown experiment {experiment!r}; known: {sorted(exps)}")
    return exps[experiment]


def _entry(experiment: str, kind: str, name: str) -> dict[str, Any]:
    block = _experiment(experiment).get(kind) or {}
    if name not in block:
        raise KeyError(f"{experiment} has no {kind} entry {name!r}; known: {sorted(block)}")
    return block[name]


def _metadata(entry: dict[str, Any]) -> dict[str, str]:
    """Label, exactness and a readable source line shared by every accessor."""
    src = entry["source"]
    return {
        "label": str(entry.get("label", "")),
        "exactness": entry["exactness"],
        "source": f"{citation(src['paper'])}, {src['where']}",
        "paper": src["paper"],
        "where": str(src["where"]),
    }


def _with_source(item: dict[str, Any]) -> str:
    src = item["source"]
    short = citation(src["paper"]).split(",")[0]
    return f"{item['text'].strip()} [{short}, {src['where']}; {item['exactness']}]"
