"""The experiment is the unit: each ``conf/experiment/<name>.yaml`` has a report module
``reglab/report/experiments/<name>.py`` and a ``kind: sweep`` entry in published.yaml, a
sweep without a module still gets a figure (its grid's axes against test error), and the
report package stays in small files; the published series is drawn only where the paper
has numbers; settings swept beside the grid get figures of their own (plot_sweep)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import CONF, ROOT
from report_fixtures import EXPERIMENT_JOBS, make_sweep, penalties_jobs, runs_frame, user_sweep_jobs

from reglab import published as pub
from reglab.report import cli, generic
from reglab.report import experiments as exps
from reglab.report import sweeps as sw
from reglab.report.plotting import FigureReport

REPORT = ROOT / "src" / "reglab" / "report"


def test_registry_config_and_published_name_the_same_experiments() -> None:
    configs = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    modules = set(exps.registry())
    published = set(pub.experiments("sweep"))
    assert modules == configs, (
        f"report modules without a config: {sorted(modules - configs)}; configs without a "
        f"module (src/reglab/report/experiments/<name>.py): {sorted(configs - modules)}"
    )
    assert published == configs, f"published.yaml sweep entries vs configs: {published ^ configs}"


@pytest.mark.parametrize("name", sorted(exps.registry()))
def test_every_module_exports_title_and_build(name: str) -> None:
    module = exps.registry()[name]
    assert isinstance(module.TITLE, str) and module.TITLE
    assert callable(module.build)
    assert module.__doc__, f"{name}: say which paper figure/table the module draws"


def test_registry_follows_the_papers_order() -> None:
    names = list(exps.registry())
    order = [e for e in pub.experiments("sweep") if e in names]
    assert names[: len(order)] == order


def test_no_report_file_over_400_lines() -> None:
    long = {
        str(p.relative_to(REPORT)): n
        for p in REPORT.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, long


# --------------------------------------------------------------------------- generic figure


def test_a_sweep_without_a_module_gets_its_axes_against_test_error(tmp_path: Path) -> None:
    args, jobs = user_sweep_jobs()
    root = make_sweep(tmp_path / "sweeps" / "my_sweep" / "quick", "my_sweep", args, jobs)
    sweep = sw.read_sweep(root)
    ((setting, report),) = exps.plot_sweep("my_sweep", sweep.completed, sweep.grid_keys)
    assert setting == ""
    ax = report.figure.axes[0]
    assert ax.get_xlabel() == "optimizer.lr" and ax.get_xscale() == "log"
    bars = {c.get_label(): c for c in ax.containers}  # errorbar containers: mean ± s.d.
    sgd = bars["measured (reglab): optimizer=sgd"].lines[0]
    np.testing.assert_allclose(sgd.get_xdata(), [0.01, 0.1, 1.0])
    np.testing.assert_allclose(sgd.get_ydata(), [2.11, 2.2, 3.1])  # mean of seeds 0 and 1
    table = report.tables[0][1].set_index(["optimizer", "optimizer.lr"])
    assert table.loc[("adam", 0.1), "test error %"] == pytest.approx(3.2)
    assert table.loc[("adam", 0.1), "sd"] == pytest.approx(np.std([3.1, 3.3], ddof=1))
    assert table.loc[("adam", 0.1), "seeds"] == 2

    html = cli.build_report([root], tmp_path / "site").read_text(encoding="utf-8")
    assert "gets the generic figure" in html
    assert html.count('src="data:image/png;base64,') >= 1 + 2  # its figure + 2 illustrations


def test_generic_figure_with_categories_only() -> None:
    runs = pd.DataFrame(
        {
            "experiment": "x",
            "overrides": [["corruption=none", "seed=0"], ["corruption=gaussian", "seed=0"]],
            "test_error": [2.0, 80.0],
            "train_error": [0.0, 0.0],
        }
    )
    report = generic.build(runs)
    ax = report.figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gaussian", "none"]
    assert list(report.tables[0][1]["test error %"]) == [80.0, 2.0]


def test_the_documented_example_module_works() -> None:
    """The tiny module in reglab.report.experiments' docstring runs as written."""
    from report_fixtures import architectures_jobs

    doc = exps.__doc__
    block = doc.split("A tiny but complete module::", 1)[1].split("\n\n", 1)[1]
    code = "\n".join(ln[4:] for ln in block.split("\nIts pieces")[0].splitlines())
    namespace: dict = {}
    exec(compile(code, "example", "exec"), namespace)
    report = namespace["build"](runs_frame(architectures_jobs()[1], "example"))
    table = report.tables[0][1]
    assert set(table["method"]) == {"max_norm c=2", "dropout p=0.5 + max_norm c=2"}
    assert report.figure.axes[0].get_ylabel() == "test error %"


def _labels(report: FigureReport) -> list[str]:
    return [
        line.get_label() for ax in report.figure.axes for line in [*ax.get_lines(), *ax.collections]
    ]


@pytest.mark.parametrize(
    ("experiment", "has_published"),
    [
        ("data_size", False),
        ("architectures", True),
        ("randomization", True),
        ("label_corruption", True),
        ("batchnorm", False),
        ("penalties", False),
        ("regularizer_comparison", True),
    ],
)
def test_published_series_only_where_the_paper_has_numbers(
    experiment: str, has_published: bool
) -> None:
    _, jobs = EXPERIMENT_JOBS[experiment]()
    report = exps.plot_experiment(experiment, runs_frame(jobs, experiment))
    published = [lb for lb in _labels(report) if lb.startswith("published")]
    assert bool(published) == has_published, published
    for title, table in report.tables:
        assert table.attrs.get("source"), f"{title}: no source/ 'no published numbers' note"


def test_settings_swept_beside_the_grid_get_figures_of_their_own(tmp_path: Path) -> None:
    """``make sweep EXP=penalties ARGS="optimizer.lr=0.01,0.1"``: one figure and one table
    per lr, each from that lr's runs, never a mean over both."""
    grid_args, jobs = penalties_jobs()
    swept = []
    for lr, worse in (("0.01", 0.0), ("0.1", 10.0)):
        for job in copy.deepcopy(jobs):
            job["overrides"].append(f"optimizer.lr={lr}")
            job["metrics"]["test_error"] += worse
            swept.append(job)
    grid = dict(arg.split("=", 1) for arg in grid_args)  # the experiment file's grid
    root = tmp_path / "logs" / "sweeps" / "penalties" / "quick"
    make_sweep(root, "penalties", ["optimizer.lr=0.01,0.1"], swept, grid=grid)
    # One job was first run with its data elsewhere: a key left out of folder names,
    # which never makes a setting of its own.
    multirun = yaml.safe_load((root / "multirun.yaml").read_text())
    multirun["hydra"]["job"] = {"config": {"override_dirname": {"exclude_keys": ["data.root"]}}}
    (root / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    moved = next(root.glob("*optimizer.lr=0.1,*seed=0/summary.json"))
    summary = json.loads(moved.read_text())
    moved.write_text(json.dumps(summary | {"overrides": [*summary["overrides"], "data.root=/x"]}))
    sweep = sw.read_sweep(root)
    assert sweep.grid_keys == {"regularizer", "regularizer.lam", "seed"}
    assert len(sweep.completed) == 36 and not len(sweep.incomplete)

    reports = exps.plot_sweep("penalties", sweep.completed, sweep.grid_keys, sweep.unnamed_keys)
    assert [setting for setting, _ in reports] == ["optimizer.lr=0.01", "optimizer.lr=0.1"]
    for (_, report), worse in zip(reports, (0.0, 10.0), strict=True):
        table = report.tables[0][1].set_index(["regularizer", "λ"])
        assert table.loc[("l2", 1e-3), "test error %"] == pytest.approx(3.0 + worse)
        assert table.loc[("l2", 1e-3), "seeds"] == 2
    pooled = exps.plot_sweep("penalties", sweep.completed, None)  # grid unknown: one figure
    assert len(pooled) == 1
    assert pooled[0][1].tables[0][1]["seeds"].max() == 4

    out = tmp_path / "site"
    html = cli.build_report([root], out).read_text(encoding="utf-8")
    assert "Runs with optimizer.lr=0.01." in html and "Runs with optimizer.lr=0.1." in html
    assert len(list((out / "figures").glob("penalties-quick--optimizer-lr-*.png"))) == 2
    assert len(list(out.glob("*test-error-and-exact-zeros-by-optimizer-lr-0-1*.csv"))) == 1
