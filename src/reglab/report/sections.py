"""The sections of reglab-report's page: the overview, one per experiment (its figure and
tables from :mod:`reglab.report.experiments`, the data its runs used, the runs left out,
the sweep's details), one per experiment without a sweep, the lecture's illustrations and
the published tables for reference.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reglab import dotted
from reglab import published as pub
from reglab.figures import ILLUSTRATIONS
from reglab.report import experiments as exps
from reglab.report import illustrations as ill
from reglab.report import sweeps as sw
from reglab.report.html import Section, slugify
from reglab.report.runinfo import data_description
from reglab.report.tables import (
    duration,
    excluded_table,
    read_json,
    rounded,
    runs_table,
    short_path,
    sweep_details,
    when,
)
from reglab.summary import COMPLETED, NO_SUMMARY, NOT_STARTED, STATUSES


def overview_section(sweeps: Sequence[sw.Sweep], searched: Sequence[Path]) -> Section:
    rows = [
        {
            "experiment": s.experiment,
            "scale": s.scale or "–",
            "sweep folder": short_path(s.root),
            "launched": when(s.started),
            "jobs": _counts_text(s),
            "finished": "yes" if s.finished else "no",
            "elapsed": duration(s.elapsed_s),
            "summed wall time": duration(s.wall_time_s),
        }
        for s in sweeps
    ]
    columns = [
        "experiment",
        "scale",
        "sweep folder",
        "launched",
        "jobs",
        "finished",
        "elapsed",
        "summed wall time",
    ]
    table = pd.DataFrame(rows, columns=columns)
    missing = [e for e in exps.experiments() if e not in {s.experiment for s in sweeps}]
    text = (
        f"Sweeps searched under: {', '.join(short_path(p) for p in searched)}. Only "
        "summary.json files are read; only jobs whose summary says 'completed' are plotted, "
        "all others are listed in their experiment's section. Measured values are means "
        "over seeds with ±1 standard deviation. Published numbers come from "
        "reglab/published.yaml and are marked 'exact', 'figure' (read off the "
        "paper's figure, about ±0.05 on the plotted scale) or 'quoted'."
    )
    if missing:
        text += "\n\nNo sweep found for: " + ", ".join(missing) + "."
    return Section("Overview", text, tables=[("Sweeps in this report", table)] if rows else ())


def _counts_text(sweep: sw.Sweep) -> str:
    counts = sweep.status_counts()
    order = [*STATUSES, NO_SUMMARY, NOT_STARTED]
    keys = [k for k in order if k in counts] + sorted(set(counts) - set(order))
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "none"


def experiment_section(sweep: sw.Sweep, fig_dir: Path, stem: str) -> Section:
    """Figure, measured-vs-published tables, excluded runs and config of one sweep."""
    done = sweep.completed
    text = [_status_text(sweep)]
    if len(done):
        text.append(f"Data of these runs (from their summaries): {data_description(done)}.")
    if sweep.experiment in pub.experiments():
        text.insert(0, f"In the paper: {pub.experiment_title(sweep.experiment)}.")
        text += [f"Paper's protocol: {p}" for p in pub.protocol(sweep.experiment)]
        text += [f"Paper's claim: {c}" for c in pub.claims(sweep.experiment)]
    figures: list[tuple[Path, str]] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    if sweep.experiment not in exps.registry():
        text.append(
            "No report module is defined for this experiment "
            f"(src/reglab/report/experiments/{sweep.experiment}.py), so it gets the generic "
            "figure: its swept settings against test error."
        )
    if len(done):
        try:
            reports = exps.plot_sweep(
                sweep.experiment, done, sweep.grid_keys, ignore=sweep.unnamed_keys
            )
        except Exception:  # one odd sweep must not cost the whole page its other figures
            traceback.print_exc()
            reports = []
            text.append("Drawing this figure failed (traceback on stderr); its runs are listed.")
        if len(reports) > 1:
            text.append(
                "This sweep also varied settings outside the experiment's own grid; each of "
                "their values has its own figure and tables, never one average over them."
            )
        for setting, report in reports:
            report.stem = f"{stem}--{slugify(setting)}" if setting else stem
            caption = f"Runs with {setting}. {report.caption}" if setting else report.caption
            suffix = f" ({setting})" if setting else ""
            figures.append((report.save(fig_dir), caption))
            tables += [(f"{t}{suffix}", rounded(df)) for t, df in report.tables]
    else:
        text.append("No job of this sweep has completed yet, so there is nothing to plot.")
    if len(sweep.incomplete):
        tables.append(("Runs not included (not completed)", excluded_table(sweep.incomplete)))
    folded = [("Completed runs", rounded(runs_table(done)))]
    return Section(_title(sweep), "\n\n".join(text), figures, tables, sweep_details(sweep), folded)


def missing_section(experiment: str) -> Section:
    title = exps.title(experiment)
    text = (
        f"No sweep of '{experiment}' was found, so this figure is not in the report. Run "
        f"`make sweep EXP={experiment}` (or `reglab-train -m experiment={experiment}`), "
        "then `make report`."
    )
    if experiment in pub.experiments():
        text += "\n\n" + "\n\n".join(f"Paper's protocol: {p}" for p in pub.protocol(experiment))
    return Section(f"{title} — {experiment}: no sweep", text)


def illustrations_section(folder: Path, batchnorm_found: bool = True) -> Section:
    """The lecture's illustrations: the two numpy ones (drawn now) and the model ones."""
    figures: list[tuple[Path, str]] = list(ill.lecture_illustrations(folder))
    tables: list[tuple[str, pd.DataFrame]] = []
    shown: list[dict[str, Any]] = []
    missing = []
    known = {stem for stem, _ in ILLUSTRATIONS}
    extra = sorted(p.stem for p in folder.glob("*.png")) if folder.is_dir() else []
    drawn = {Path(f).stem for f, _ in figures}
    for stem in [s for s, _ in ILLUSTRATIONS] + [e for e in extra if e not in known]:
        if stem in drawn:
            continue
        png, meta = folder / f"{stem}.png", read_json(folder / f"{stem}.json")
        if not png.is_file():
            module = dict(ILLUSTRATIONS).get(stem)
            missing.append(f"{stem} (python -m reglab.illustrate.{module})" if module else stem)
            continue
        figures.append((png, str(meta.get("caption") or stem)))
        numbers = meta.get("numbers")
        if isinstance(numbers, dict) and numbers and numbers not in shown:
            shown.append(numbers)  # two figures of one module share their numbers
            tables.append((f"{stem}: numbers", _numbers_table(numbers)))
    text = (
        "The lecture's illustrations. The penalty toy and the constraint sets are drawn by "
        "reglab-report itself; the others train small models and are written by the "
        f"modules of reglab.illustrate into {short_path(folder)} (run them with "
        "`reglab-report --illustrate` or one by one, e.g. "
        "`python -m reglab.illustrate.proximal_l1`)."
    )
    if missing:
        text += "\n\nNot generated yet: " + "; ".join(missing) + "."
    text += (
        "\n\nBatch normalization (Ioffe & Szegedy 2015 Fig 1) is drawn from the batchnorm "
        "sweep's summaries in its own section"
        + ("." if batchnorm_found else ": no batchnorm sweep was found, so it is missing.")
    )
    return Section("Lecture illustrations", text, figures, folded_tables=tables)


def published_context_section() -> Section:
    """Published tables that no sweep reproduces one-to-one, for reference."""
    wanted = [
        ("architectures", "table2_mnist"),
        ("architectures", "table9_regularizers"),
        ("randomization", "table1_cifar10"),
        ("conv_nets", "tables3_4_conv"),
    ]
    tables = [(pub.table(e, n).attrs["label"], pub.table(e, n)) for e, n in wanted]
    notes = [
        f"{v['label']}: {v['value']:g} {v['unit']} [{v['exactness']}]"
        for e in ("autoencoder", "monte_carlo")
        for _, v in pub.values(e).iterrows()
    ]
    text = "The papers' own tables, as stored in published.yaml.\n\n" + "\n\n".join(notes)
    return Section("Published tables (reference)", text, tables=tables)


def _title(sweep: sw.Sweep) -> str:
    name = sweep.experiment
    figure = exps.title(name)
    return f"{figure} — {name} ({sweep.scale or 'no scale'})"


def _status_text(sweep: sw.Sweep) -> str:
    counts = sweep.status_counts()
    total = sum(counts.values())
    done = counts.get(COMPLETED, 0)
    state = "finished" if sweep.finished else "NOT finished (jobs still running or killed)"
    text = f"Sweep {short_path(sweep.root)}: {done} of {total} jobs completed; sweep {state}."
    if done < total:
        text += " The other jobs are listed under 'Runs not included' and are not plotted."
    return text


def _numbers_table(numbers: dict[str, Any]) -> pd.DataFrame:
    flat = dotted.flatten(numbers, keep_empty=True)
    return pd.DataFrame({"quantity": list(flat), "value": [_fmt(v) for v in flat.values()]})


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
