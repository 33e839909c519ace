"""``reglab-report``: one static HTML page of every experiment's figure beside the papers.

``reglab-report [SWEEP_DIR ...] [--out DIR]`` reads the ``summary.json`` of each job of
the latest sweep of every experiment (or of the sweeps named), draws the paper's figure
with the published numbers overlaid, writes the measured-vs-published tables as CSV and
Markdown, and adds the lecture's illustrations. Failed, diverged, unfinished and
never-started jobs are listed, never plotted. ``--illustrate`` first runs the
``scripts/illustrate_*.py`` that train small models; otherwise whatever they last wrote
into the illustrations folder is included.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reglab.report import figures as figs
from reglab.report import illustrations as ill
from reglab.report import published as pub
from reglab.report import sweeps as sw
from reglab.report.html import Section, atomic_write_text, slugify, write_page

SCRIPTS_DIR = Path(__file__).resolve().parents[3] / "scripts"
#: Model illustrations, in the order the page shows them: (file stem, script that writes it).
MODEL_ILLUSTRATIONS = (
    ("proximal_l1", "illustrate_proximal_l1.py"),
    ("autoencoder_features", "illustrate_autoencoder.py"),
    ("autoencoder_sparsity", "illustrate_autoencoder.py"),
)
#: Lists the files the last render wrote, so the next one can remove those it no longer makes.
MANIFEST = ".reglab-report.json"
#: Config keys that say where a run ran, not what it computed; left out of the details.
_NOISY_KEYS = ("paths.", "logger.", "data.root", "hydra.")


# =========================================================================== selection


def select_sweeps(dirs: Sequence[str | Path], all_sweeps: bool = False) -> list[sw.Sweep]:
    """The sweeps to report: every sweep root named, plus the latest per experiment below
    the other folders (every sweep there with ``all_sweeps``)."""
    dirs = [Path(d) for d in dirs] or [sw.default_log_dir() / "sweeps"]
    named = [d for d in dirs if (d / sw.MULTIRUN).is_file()]
    found = sw.find_sweeps([d for d in dirs if d not in named])
    chosen = found if all_sweeps else list(sw.latest_sweeps(found).values())
    chosen += [sw.read_sweep(d) for d in named]
    unique = {s.root: s for s in chosen}
    order = {name: i for i, name in enumerate(figs.EXPERIMENTS)}
    return sorted(unique.values(), key=lambda s: (order.get(s.experiment, 99), s.started))


# =========================================================================== sections


def overview_section(sweeps: Sequence[sw.Sweep], searched: Sequence[Path]) -> Section:
    rows = [
        {
            "experiment": s.experiment,
            "scale": s.scale or "–",
            "sweep folder": _short_path(s.root),
            "launched": _when(s.started),
            "jobs": _counts_text(s),
            "finished": "yes" if s.finished else "no",
            "elapsed": _duration(s.elapsed_s),
            "summed wall time": _duration(s.wall_time_s),
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
    missing = [e for e in figs.EXPERIMENTS if e not in {s.experiment for s in sweeps}]
    text = (
        f"Sweeps searched under: {', '.join(_short_path(p) for p in searched)}. Only "
        "summary.json files are read; only jobs whose summary says 'completed' are plotted, "
        "all others are listed in their experiment's section. Measured values are means "
        "over seeds with ±1 standard deviation. Published numbers come from "
        "reglab/report/published.yaml and are marked 'exact', 'figure' (read off the "
        "paper's figure, about ±0.05 on the plotted scale) or 'quoted'."
    )
    if missing:
        text += "\n\nNo sweep found for: " + ", ".join(missing) + "."
    return Section("Overview", text, tables=[("Sweeps in this report", table)] if rows else ())


def _counts_text(sweep: sw.Sweep) -> str:
    counts = sweep.status_counts()
    order = ["completed", "failed", "diverged", sw.INTERRUPTED, sw.NO_SUMMARY, sw.NOT_STARTED]
    keys = [k for k in order if k in counts] + sorted(set(counts) - set(order))
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "none"


def experiment_section(sweep: sw.Sweep, fig_dir: Path, stem: str) -> Section:
    """Figure, measured-vs-published tables, excluded runs and config of one sweep."""
    title = _title(sweep)
    done = sweep.completed
    text = [_status_text(sweep)]
    if sweep.experiment in pub.experiments():
        text.insert(0, pub.experiment_title(sweep.experiment) + ".")
        text += [f"Paper's protocol: {p}" for p in pub.protocol(sweep.experiment)]
        text += [f"Paper's claim: {c}" for c in pub.claims(sweep.experiment)]
    figures: list[tuple[Path, str]] = []
    tables: list[tuple[str, pd.DataFrame]] = []
    if sweep.experiment not in figs.PLOTTERS:
        text.append("No paper figure is defined for this experiment; its runs are listed.")
    elif len(done):
        try:
            reports = figs.plot_sweep(
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
    return Section(title, "\n\n".join(text), figures, tables, sweep_details(sweep), folded)


def missing_section(experiment: str) -> Section:
    title = figs.PAPER_FIGURES.get(experiment, experiment)
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
    known = {stem for stem, _ in MODEL_ILLUSTRATIONS}
    extra = sorted(p.stem for p in folder.glob("*.png")) if folder.is_dir() else []
    drawn = {Path(f).stem for f, _ in figures}
    for stem in [s for s, _ in MODEL_ILLUSTRATIONS] + [e for e in extra if e not in known]:
        if stem in drawn:
            continue
        png, meta = folder / f"{stem}.png", _read_json(folder / f"{stem}.json")
        if not png.is_file():
            script = dict(MODEL_ILLUSTRATIONS).get(stem)
            missing.append(f"{stem} (python scripts/{script})" if script else stem)
            continue
        figures.append((png, str(meta.get("caption") or stem)))
        numbers = meta.get("numbers")
        if isinstance(numbers, dict) and numbers and numbers not in shown:
            shown.append(numbers)  # two figures of one script share their numbers
            tables.append((f"{stem}: numbers", _numbers_table(numbers)))
    text = (
        "The lecture's illustrations. The penalty toy and the constraint sets are drawn by "
        "reglab-report itself; the others train small models and are written by the "
        f"scripts into {_short_path(folder)} (run them with `reglab-report --illustrate` or "
        "one by one, e.g. `python scripts/illustrate_proximal_l1.py`)."
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


# =========================================================================== tables and details


def rounded(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Float columns to ``digits`` significant digits, so λ = 1e-05 stays 1e-05 (attrs such as
    source and exactness kept)."""
    out = df.copy()
    for col in out.select_dtypes("float").columns:
        out[col] = out[col].map(lambda v: float(f"{v:.{digits}g}") if v == v else v)
    out.attrs = dict(df.attrs)
    return out


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per completed run: what it varied, its seed, errors and wall time."""
    cols = ["job", "seed", "test error %", "train error %", "steps", "wall time s"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    runs = runs.iloc[sorted(range(len(runs)), key=lambda i: _natural(runs["job"].iloc[i]))]
    return pd.DataFrame(
        {
            "job": runs["overrides"].map(sw.short_overrides),
            "seed": runs["seed"],
            "test error %": pd.to_numeric(runs["test_error"], errors="coerce"),
            "train error %": pd.to_numeric(runs["train_error"], errors="coerce"),
            "steps": pd.to_numeric(runs["steps"], errors="coerce").astype("Int64"),
            "wall time s": pd.to_numeric(runs["wall_time_s"], errors="coerce"),
        }
    )[cols].reset_index(drop=True)


def excluded_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Jobs left out of the figures, with why."""
    return pd.DataFrame(
        {
            "job": runs["overrides"].map(sw.short_overrides),
            "status": runs["status"],
            "reason": [_reason(r) for _, r in runs.iterrows()],
            "folder": runs["path"].map(
                lambda p: _short_path(Path(p)) if isinstance(p, str) else "–"
            ),
        }
    )


def sweep_details(sweep: sw.Sweep) -> dict[str, Any]:
    """Folded key/value list: where, scale, times, command, and the config of the sweep."""
    done = sweep.completed
    details: dict[str, Any] = {
        "sweep folder": str(sweep.root),
        "scale": sweep.scale or "–",
        "launched": _when(sweep.started),
        "jobs": ", ".join(f"{n} {k}" for k, n in sweep.status_counts().items()),
        "elapsed (launch to last summary)": _duration(sweep.elapsed_s),
        "summed wall time": _duration(sweep.wall_time_s),
        "command overrides": " ".join(sweep.sweep_overrides) or "–",
    }
    if sweep.ignored:
        details["ignored job folders"] = f"{sweep.ignored} (from an earlier sweep in this folder)"
    if len(done):
        commits = sorted({str(c) for c in done["git_commit"] if c})
        details["git commit"] = ", ".join(commits) or "–"
        common, varied = split_config(list(done["config"]))
        details |= {f"varied: {k}": ", ".join(map(str, v)) for k, v in varied.items()}
        details |= {f"config: {k}": v for k, v in common.items()}
    return details


def split_config(configs: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, list]]:
    """Flattened config keys equal in every run, and the distinct values of the others."""
    flat = [sw.flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f if not k.startswith(_NOISY_KEYS)})
    common, varied = {}, {}
    for key in keys:
        values = [json.dumps(f.get(key), default=str) for f in flat]
        distinct = sorted(set(values))
        if len(distinct) == 1:
            common[key] = json.loads(distinct[0]) if distinct[0] != "null" else None
        else:
            varied[key] = sorted((json.loads(v) for v in distinct), key=_value_order)
    return common, varied


def _value_order(value: Any) -> tuple[int, Any]:
    """Numbers first, in numeric order; then everything else by its text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


# =========================================================================== page


def build_report(
    sweep_dirs: Sequence[str | Path] = (),
    out: str | Path = "reports",
    illustrations: str | Path | None = None,
    all_sweeps: bool = False,
) -> Path:
    """Write ``out/index.html`` (+ figures, CSV and Markdown tables); return its path."""
    out = Path(out)
    before = _forget_previous_render(out)
    searched = [Path(d) for d in sweep_dirs] or [sw.default_log_dir() / "sweeps"]
    sweeps = select_sweeps(searched, all_sweeps)
    fig_dir = out / "figures"
    sections = [overview_section(sweeps, searched)]
    stems: set[str] = set()
    for sweep in sweeps:
        stem = _unique(slugify(f"{sweep.experiment}-{sweep.scale or ''}"), stems)
        sections.append(experiment_section(sweep, fig_dir, stem))
    present = {s.experiment for s in sweeps}
    sections += [missing_section(e) for e in figs.EXPERIMENTS if e not in present]
    folder = Path(illustrations or out / "illustrations")
    sections.append(illustrations_section(folder, batchnorm_found="batchnorm" in present))
    sections.append(published_context_section())
    intro = (
        "Figures of Srivastava et al. 2014 (dropout), Zhang et al. 2017 (randomization "
        "tests) and Ioffe & Szegedy 2015 (batch normalization) reproduced by reglab, with "
        f"the published numbers overlaid. Generated {_when(time.time())}."
    )
    page = write_page(sections, out, title="reglab report", intro=intro)
    written = sorted(str(p.relative_to(out)) for p in _own_files(out) if p not in before)
    atomic_write_text(out / MANIFEST, json.dumps({"files": written}, indent=1))
    return page


def _own_files(out: Path) -> set[Path]:
    """Files of the kind a render writes: tables next to the page, and figures/."""
    return {p for p in [*out.glob("*"), *(out / "figures").glob("*")] if p.is_file()}


def _forget_previous_render(out: Path) -> set[Path]:
    """Delete the tables and figures the previous render listed in its manifest (so a
    renamed section leaves no stale CSV behind); returns the files left, which are not
    the report's and are never touched."""
    for name in _read_json(out / MANIFEST).get("files", []):
        path = out / name
        if path.name not in {"index.html", MANIFEST} and path.is_file():
            path.unlink()
    return _own_files(out) if out.is_dir() else set()


def run_illustration_scripts(out: Path, scripts_dir: Path = SCRIPTS_DIR) -> None:
    """Run every ``scripts/illustrate_*.py`` with ``--out out`` (trains small models)."""
    scripts = sorted(scripts_dir.glob("illustrate_*.py"))
    if not scripts:
        raise SystemExit(f"reglab-report: no illustrate_*.py in {scripts_dir}")
    for script in scripts:
        print(f"reglab-report: running {script.name} …", file=sys.stderr)
        cmd = [sys.executable, str(script), "--out", str(out)]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)  # numbers: JSON
        if done.returncode:
            raise SystemExit(f"reglab-report: {script.name} failed (exit {done.returncode})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reglab-report",
        description="Write DIR/index.html: every experiment's figure beside the papers.",
    )
    parser.add_argument(
        "sweep_dirs",
        nargs="*",
        type=Path,
        metavar="SWEEP_DIR",
        help="sweep folders (with multirun.yaml) or folders to search for the latest sweep "
        "of each experiment (default: $REGLAB_LOG_DIR/sweeps, else logs/sweeps)",
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="default: reports")
    parser.add_argument(
        "--illustrations",
        type=Path,
        default=None,
        help="folder of the illustration PNG/JSON files (default: OUT/illustrations)",
    )
    parser.add_argument(
        "--illustrate",
        action="store_true",
        help="first run scripts/illustrate_*.py (trains small models on MNIST, minutes on CPU)",
    )
    parser.add_argument(
        "--all", action="store_true", help="every sweep found, not only each experiment's latest"
    )
    args = parser.parse_args(argv)
    folder = args.illustrations or args.out / "illustrations"
    if args.illustrate:
        run_illustration_scripts(folder)
    path = build_report(args.sweep_dirs, args.out, folder, args.all)
    print(path)
    return 0


# =========================================================================== helpers


def _title(sweep: sw.Sweep) -> str:
    name = sweep.experiment
    figure = figs.PAPER_FIGURES.get(name, "runs")
    return f"{figure} — {name} ({sweep.scale or 'no scale'})"


def _status_text(sweep: sw.Sweep) -> str:
    counts = sweep.status_counts()
    total = sum(counts.values())
    done = counts.get("completed", 0)
    state = "finished" if sweep.finished else "NOT finished (jobs still running or killed)"
    text = f"Sweep {_short_path(sweep.root)}: {done} of {total} jobs completed; sweep {state}."
    if done < total:
        text += " The other jobs are listed under 'Runs not included' and are not plotted."
    return text


def _reason(row: pd.Series) -> str:
    if row["status"] == sw.NOT_STARTED:
        return "asked for by the sweep, but no job folder exists"
    if row["status"] == sw.NO_SUMMARY:
        return "job folder without summary.json: still running, or killed"
    if row["status"] == sw.INTERRUPTED and not row.get("error"):
        return "interrupted: running the sweep again resumes it"
    return str(row.get("error") or row["status"])


def _numbers_table(numbers: dict[str, Any]) -> pd.DataFrame:
    flat = sw.flatten(numbers)
    return pd.DataFrame({"quantity": list(flat), "value": [_fmt(v) for v in flat.values()]})


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _natural(text: Any) -> list[Any]:
    """Sort key that orders 'size=500' before 'size=1000'."""
    parts = re.split(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", str(text))
    return [(0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts)]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _unique(stem: str, used: set[str]) -> str:
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


def _short_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "–"


def _duration(seconds: float) -> str:
    if not seconds or seconds != seconds:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


if __name__ == "__main__":
    raise SystemExit(main())
