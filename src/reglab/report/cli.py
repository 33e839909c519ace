"""``reglab-report``: one static HTML page of every experiment's figure beside the papers.

``reglab-report [SWEEP_DIR ...] [--out DIR]`` reads the ``summary.json`` of each job of
the latest sweep of every experiment (or of the sweeps named), draws the paper's figure
with the published numbers overlaid, writes the measured-vs-published tables as CSV and
Markdown, and adds the lecture's illustrations. Failed, diverged, unfinished and
never-started jobs are listed, never plotted. ``--illustrate`` first runs the
illustrations that train small models (:mod:`reglab.illustrate`); otherwise whatever they last wrote
into the illustrations folder is included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reglab.figures import MODULES
from reglab.report import experiments as exps
from reglab.report import sweeps as sw
from reglab.report.html import atomic_write_text, slugify, write_page
from reglab.report.sections import (
    experiment_section,
    illustrations_section,
    missing_section,
    overview_section,
    published_context_section,
)
from reglab.report.tables import read_json, when

#: Lists the files the last render wrote, so the next one can remove those it no longer makes.
MANIFEST = ".reglab-report.json"


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
    order = {name: i for i, name in enumerate(exps.experiments())}
    return sorted(unique.values(), key=lambda s: (order.get(s.experiment, 99), s.started))


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
    sections += [missing_section(e) for e in exps.experiments() if e not in present]
    folder = Path(illustrations or out / "illustrations")
    sections.append(illustrations_section(folder, batchnorm_found="batchnorm" in present))
    sections.append(published_context_section())
    intro = (
        "Figures of Srivastava et al. 2014 (dropout), Zhang et al. 2017 (randomization "
        "tests) and Ioffe & Szegedy 2015 (batch normalization) reproduced by reglab, with "
        f"the published numbers overlaid. Generated {when(time.time())}."
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
    for name in read_json(out / MANIFEST).get("files", []):
        path = out / name
        if path.name not in {"index.html", MANIFEST} and path.is_file():
            path.unlink()
    return _own_files(out) if out.is_dir() else set()


def run_illustrations(out: Path) -> None:
    """Run every :mod:`reglab.illustrate` module with ``--out out`` (trains small models)."""
    for name in MODULES:
        module = f"reglab.illustrate.{name}"
        print(f"reglab-report: running {module} …", file=sys.stderr)
        cmd = [sys.executable, "-m", module, "--out", str(out)]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)  # numbers: JSON
        if done.returncode:
            raise SystemExit(f"reglab-report: {module} failed (exit {done.returncode})")


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
        help="first run reglab.illustrate's modules (train small models on MNIST, minutes on CPU)",
    )
    parser.add_argument(
        "--all", action="store_true", help="every sweep found, not only each experiment's latest"
    )
    args = parser.parse_args(argv)
    folder = args.illustrations or args.out / "illustrations"
    if args.illustrate:
        run_illustrations(folder)
    path = build_report(args.sweep_dirs, args.out, folder, args.all)
    print(path)
    return 0


# =========================================================================== helpers


def _unique(stem: str, used: set[str]) -> str:
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


if __name__ == "__main__":
    raise SystemExit(main())
