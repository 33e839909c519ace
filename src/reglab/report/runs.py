"""``reglab-runs``: a table of every run under the log folder, filterable, or JSON for scripts.

    reglab-runs                                   # every run under $REGLAB_LOG_DIR or logs/
    reglab-runs --experiment dropout_rate_fixed_n --where dropout.p_hidden=0.5
    reglab-runs --status failed --json | jq .
    reglab-runs -e penalties --csv > penalties.csv      # every flat column

Built on :func:`reglab.results` (:mod:`reglab.report.results`): the same rows and columns.
``--where KEY=VALUE`` keeps a run when one of its overrides is exactly ``KEY=VALUE``, its
resolved config has ``VALUE`` at ``KEY`` (``0.5`` matches ``0.5`` and ``5e-1``), or it
chose option ``VALUE`` in config group ``KEY`` (``--where corruption=random_labels``).
Several ``--where`` must all hold; several ``--experiment`` / ``--status`` are alternatives.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from reglab.report import sweeps as sw
from reglab.report.results import results
from reglab.summary import COMPLETED, DIVERGED, FAILED, INTERRUPTED, NO_SUMMARY, NOT_STARTED

STATUS_STYLES = {
    COMPLETED: "green",
    FAILED: "bold red",
    DIVERGED: "magenta",
    INTERRUPTED: "yellow",
    NO_SUMMARY: "yellow",
    NOT_STARTED: "dim",
}
JSON_FIELDS = (
    "experiment",
    "status",
    "overrides",
    "seed",
    "test_error",
    "train_error",
    "wall_time_s",
    "error",
    "path",
    "sweep",
    "choices",
    "metrics",
)


# --------------------------------------------------------------------------- filtering


def parse_where(items: Sequence[str]) -> list[tuple[str, str]]:
    """``["a.b=1"]`` → ``[("a.b", "1")]``; raises ``ValueError`` on an item without '='."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--where needs KEY=VALUE, got {item!r}")
        out.append((key.strip(), value.strip()))
    return out


def matches(runs: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Per run of a :func:`~reglab.report.results.results` frame: is ``key=value`` one of its
    overrides, the option it chose in group ``key``, or its config value at ``key``?"""
    hit = runs["overrides"].map(lambda o: any(_same_override(x, key, value) for x in o or []))
    choices = runs.attrs.get("choices", [])
    for col in (key, f"{key} (choice)"):
        if col in choices:
            hit |= runs[col].map(lambda v: v is not None and str(v) == value)
    if key in runs.attrs.get("config", []) or key in runs.attrs.get("metrics", []):
        hit |= runs[key].map(lambda v: _present(v) and _same_value(v, value))
    return hit.astype(bool)


def filter_runs(
    runs: pd.DataFrame,
    experiments: Sequence[str] = (),
    where: Sequence[tuple[str, str]] = (),
    statuses: Sequence[str] = (),
) -> pd.DataFrame:
    """Runs of any of ``experiments`` with any of ``statuses`` that satisfy every ``where``."""
    keep = pd.Series(True, index=runs.index)
    if experiments:
        keep &= runs["experiment"].isin(experiments)
    if statuses:
        keep &= runs["status"].isin(statuses)
    for key, value in where:
        keep &= matches(runs, key, value)
    out = runs[keep]
    out.attrs = dict(runs.attrs)
    return out


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _same_override(override: str, key: str, value: str) -> bool:
    k, _, v = str(override).partition("=")
    return k.lstrip("+~") == key and (v == value or _same_value(_parse(v), value))


def _same_value(actual: Any, wanted: str) -> bool:
    """Compare a config value with a command-line string the way YAML would parse it."""
    parsed = _parse(wanted)
    if isinstance(actual, bool) or isinstance(parsed, bool):
        return actual is parsed or str(actual).lower() == wanted.lower()
    if isinstance(actual, int | float) and isinstance(parsed, int | float):
        return math.isclose(float(actual), float(parsed), rel_tol=1e-9, abs_tol=0.0)
    return actual == parsed or str(actual) == wanted


def _parse(text: str) -> Any:
    """Numbers as Python would read them (YAML 1.1 reads '1e-4' as a string), else YAML."""
    for number in (int, float):
        try:
            return number(text)
        except (TypeError, ValueError):
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


# --------------------------------------------------------------------------- output


def to_records(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready dicts (no config or history: read summary.json at ``path`` for those)."""
    choices, metrics = runs.attrs.get("choices", []), runs.attrs.get("metrics", [])
    records = []
    for _, run in runs.iterrows():
        record = {k: _plain(run[k]) if k in run else None for k in JSON_FIELDS}
        record["choices"] = {c: run[c] for c in choices if _present(run[c])}
        record["metrics"] = {
            m: _plain(run[m]) for m in metrics if isinstance(run[m], int | float | None)
        }
        records.append(record)
    return records


def to_csv(runs: pd.DataFrame) -> str:
    """Every flat column as CSV (overrides joined by spaces, lists as text)."""
    out = runs.assign(overrides=runs["overrides"].map(lambda o: " ".join(o or [])))
    return out.to_csv(index=False)


def render_table(runs: pd.DataFrame, console: Console) -> None:
    table = Table(title=f"{len(runs)} run(s)", header_style="bold", expand=False)
    table.add_column("experiment", no_wrap=True)
    table.add_column("overrides", overflow="fold", ratio=1)
    table.add_column("status", no_wrap=True)
    table.add_column("test error %", justify="right", no_wrap=True)
    table.add_column("wall time", justify="right", no_wrap=True)
    table.add_column("when", no_wrap=True)
    for _, run in runs.iterrows():
        when = run["when"]
        status = str(run["status"])
        table.add_row(
            str(run["experiment"] or "–"),
            sw.short_overrides(run["overrides"] or [], sep=" ") or "–",
            f"[{STATUS_STYLES.get(status, '')}]{status}[/]" if status in STATUS_STYLES else status,
            _number(run["test_error"], "{:.2f}"),
            _seconds(run["wall_time_s"]),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(when.timestamp()))
            if isinstance(when, pd.Timestamp)
            else "–",
        )
    console.print(table)


def _number(value: Any, fmt: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(number) else fmt.format(number)


def _seconds(value: Any) -> str:
    text = _number(value, "{:.0f}")
    return text if text == "–" else f"{text} s"


def _plain(value: Any) -> Any:
    """NaN → None, numpy scalars → Python, so ``json.dumps`` never writes NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        return value.item()
    return value


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reglab-runs",
        description="List runs (sweep jobs and single runs) from their summary.json files.",
    )
    parser.add_argument(
        "log_dirs",
        nargs="*",
        type=Path,
        metavar="LOG_DIR",
        help="folders to search (default: $REGLAB_LOG_DIR, else logs)",
    )
    parser.add_argument("--experiment", "-e", action="append", default=[], metavar="NAME")
    parser.add_argument(
        "--where",
        "-w",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="e.g. dropout.p_hidden=0.5 or corruption=random_labels (repeatable: all must hold)",
    )
    parser.add_argument(
        "--status",
        "-s",
        action="append",
        default=[],
        metavar="STATUS",
        help="completed, failed, diverged, interrupted, 'no summary' or 'not started'",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records instead")
    out.add_argument("--csv", action="store_true", help="print every flat column as CSV")
    args = parser.parse_args(argv)
    try:
        where = parse_where(args.where)
    except ValueError as error:
        parser.error(str(error))
    runs = results(args.log_dirs or None)
    runs = filter_runs(runs, args.experiment, where, args.status)
    attrs = dict(runs.attrs)
    runs = runs.sort_values(["experiment", "when"], kind="stable", na_position="last")
    runs.attrs = attrs
    try:
        if args.csv:
            sys.stdout.write(to_csv(runs))
        elif args.json:
            json.dump(to_records(runs), sys.stdout, indent=2, default=str)
            sys.stdout.write("\n")
        else:
            # piped into less or grep: do not squeeze the table into 80 columns
            width = None if sys.stdout.isatty() else 200
            render_table(runs, Console(width=width))
        sys.stdout.flush()
    except BrokenPipeError:  # `reglab-runs | head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
