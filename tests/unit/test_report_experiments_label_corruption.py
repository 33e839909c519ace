"""reglab.report.experiments.label_corruption: each published model's series, time
relative to q = 0, the runs that fitted, and λ = 0 read as no regularizer (runinfo)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_fixtures import label_corruption_jobs, runs_frame

from reglab import published as pub
from reglab.report import experiments as exps
from reglab.report import runinfo
from reglab.report.plotting import published_label
from reglab.report.stats import DIFF


def test_label_corruption_draws_each_published_model_and_relative_time() -> None:
    _, jobs = label_corruption_jobs()
    report = exps.plot_experiment("label_corruption", runs_frame(jobs, "label_corruption"))
    ax_b, ax_c = report.figure.axes
    for model in ("inception", "alexnet", "mlp_1x512"):
        series = pub.series("label_corruption", f"test_error/{model}")
        line = next(ln for ln in ax_c.get_lines() if ln.get_label() == published_label(series))
        np.testing.assert_allclose(line.get_ydata(), series["y"])  # % (the paper: fraction)
    table = report.tables[0][1]
    at_zero = table[table["q"] == 0.0]
    np.testing.assert_allclose(at_zero["relative time"], 1.0)  # relative to q = 0 by definition
    row = table[(table["q"] == 1.0) & table["variant"].str.contains("none")].iloc[0]
    assert row["published model"] == "MLP 1x512"
    assert row["test error " + DIFF] == pytest.approx(87.0 - 90.0)
    assert ax_b.get_xlabel() == "label corruption q"


def test_label_corruption_counts_the_runs_that_fitted() -> None:
    """A run that never fits has no steps to fit: the table says how many runs it averages."""
    _, jobs = label_corruption_jobs()
    for job in jobs:
        if job["overrides"] == ["corruption.q=1.0", "dropout.p_hidden=1.0", "seed=1"]:
            job["metrics"]["steps_to_fit"] = None
    report = exps.plot_experiment("label_corruption", runs_frame(jobs, "label_corruption"))
    table = report.tables[0][1]
    plain = table[table["variant"].str.contains("none")].set_index("q")
    assert plain.loc[1.0, "runs fitted"] == "1/2"
    assert plain.loc[0.0, "runs fitted"] == "2/2"
    assert plain.loc[1.0, "relative time"] == pytest.approx(2000 / 1025)  # seed 0 alone


def test_label_corruption_treats_zero_lambda_as_no_regularizer() -> None:
    cfg = {"dropout": {"p_hidden": 1.0}, "regularizer": {"_target_": "x.L2", "lam": 0.0}}
    runs = pd.DataFrame(
        {
            "config": [cfg, cfg | {"regularizer": {"lam": 5e-4}}],
            "choices": [{"regularizer": "l2"}, {"regularizer": "l2"}],
        }
    )
    assert list(runinfo.regularization(runs)) == ["none", "l2 λ=0.0005"]
