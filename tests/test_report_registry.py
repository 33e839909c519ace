"""The experiment is the unit: each ``conf/experiment/<name>.yaml`` has a report module
``reglab/report/experiments/<name>.py`` and a ``kind: sweep`` entry in published.yaml, a
sweep without a module still gets a figure (its grid's axes against test error), and the
report package stays in small files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CONF, ROOT
from report_fixtures import make_sweep, user_sweep_jobs

from reglab.report import cli, generic
from reglab.report import experiments as exps
from reglab.report import published as pub
from reglab.report import sweeps as sw

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
    from test_report import _runs_of

    doc = exps.__doc__
    block = doc.split("A tiny but complete module::", 1)[1].split("\n\n", 1)[1]
    code = "\n".join(ln[4:] for ln in block.split("\nIts pieces")[0].splitlines())
    namespace: dict = {}
    exec(compile(code, "example", "exec"), namespace)
    report = namespace["build"](_runs_of(architectures_jobs()[1], "example"))
    table = report.tables[0][1]
    assert set(table["method"]) == {"max_norm c=2", "dropout p=0.5 + max_norm c=2"}
    assert report.figure.axes[0].get_ylabel() == "test error %"
