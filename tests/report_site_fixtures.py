"""A whole synthetic report for the report tests: every experiment's sweep with Fig 9a's
problems (failed, diverged, killed, never started) and a user's sweep, the site
``reglab-report`` builds from them, and one hand-made page of hostile text. The sweeps
themselves come from :mod:`report_fixtures`.
"""

from __future__ import annotations

import json
from pathlib import Path

from report_fixtures import (
    EXPERIMENT_JOBS,
    dropout_rate_jobs,
    make_all,
    make_sweep,
    user_sweep_jobs,
)

from reglab import published as pub

# --------------------------------------------------------------------------- a whole report

FAILED_ERROR = 99.0  # test error written into the failed/diverged summaries: must never plot
DIVERGED_ERROR = 77.0


def fig9a_with_problems(root: Path) -> Path:
    """Fig 9a sweep: 20 jobs, of which 1 failed, 1 diverged, 1 killed, 1 never started."""
    args, jobs = dropout_rate_jobs("dropout_rate_fixed_n")
    by_key = {tuple(j["overrides"]): j for j in jobs}
    by_key[("dropout.p_hidden=0.5", "seed=1")] |= {
        "status": "failed",
        "metrics": {"test_error": FAILED_ERROR},
        "error": "RuntimeError: CUDA out of memory",
    }
    by_key[("dropout.p_hidden=0.8", "seed=1")] |= {
        "status": "diverged",
        "metrics": {"test_error": DIVERGED_ERROR},
        "error": "loss is nan at step 1200",
    }
    by_key[("dropout.p_hidden=0.6", "seed=1")] |= {"status": None}  # killed: no summary
    del by_key[("dropout.p_hidden=0.7", "seed=1")]  # never started: no folder
    return make_sweep(root, "dropout_rate_fixed_n", args, list(by_key.values()))


def make_report_logs(log_dir: Path) -> Path:
    """Every experiment's sweep but batchnorm's (none), Fig 9a's with problems
    (:func:`fig9a_with_problems`) and a sweep of the user's own (the generic figure)."""
    skip = ("dropout_rate_fixed_n", "batchnorm")
    make_all(log_dir, [e for e in EXPERIMENT_JOBS if e not in skip])
    fig9a_with_problems(log_dir / "sweeps" / "dropout_rate_fixed_n" / "quick")
    args, jobs = user_sweep_jobs()
    make_sweep(log_dir / "sweeps" / "my_sweep" / "quick", "my_sweep", args, jobs)
    return log_dir


def fake_model_illustration(folder: Path, stem: str, color: str, numbers: dict) -> None:
    """What a reglab.illustrate module leaves behind: a PNG and its JSON."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [0, 1], color=color, lw=8)
    fig.savefig(folder / f"{stem}.png")
    caption = f"caption of {stem}"
    (folder / f"{stem}.json").write_text(json.dumps({"caption": caption, "numbers": numbers}))


def build_site(logs: Path, out: Path) -> Path:
    """``reglab-report`` over ``logs`` (:func:`make_report_logs`) with one model illustration
    (proximal_l1) into ``out``; its index.html."""
    from reglab.report import cli

    ill = out / "illustrations"
    ill.mkdir(parents=True)
    fake_model_illustration(ill, "proximal_l1", "tab:green", {"proximal l1": {"zeros": 0.8}})
    assert cli.main([str(logs / "sweeps"), "--out", str(out)]) == 0
    return out / "index.html"


# --------------------------------------------------------------------------- one page

#: Text that must come out escaped wherever the page shows it.
EVIL = "<script>alert('x')</script> & <b>bold</b>"


def write_test_page(root: Path) -> Path:
    """A page of two sections (reglab.report.html): the lecture illustrations, and published
    and hostile tables (:data:`EVIL` in text, titles and cells); its index.html."""
    import pandas as pd

    from reglab.report import html as rhtml
    from reglab.report import illustrations as ill

    figures = ill.lecture_illustrations(root / "figs")
    published = pub.table("architectures", "table9_regularizers")
    evil = pd.DataFrame({"name <i>x</i>": [EVIL, "plain"], "value": [1.5, None]})
    sections = [
        rhtml.Section("Lecture illustrations", "Why l1 gives zeros.\n\nAnd l2 does not.", figures),
        rhtml.Section(
            "Published numbers",
            f"Escaping check: {EVIL}",
            tables=[("Table 9", published), ("Hostile <table> title", evil)],
            details={"seed": 0, "lr": 0.01, "note": EVIL},
        ),
    ]
    return rhtml.write_page(sections, root / "site", title="reglab test page")
