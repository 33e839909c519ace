"""reglab.report.experiments.batchnorm: steps to an accuracy, the percentiles' drift, and
settings swept beside the grid kept apart."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from report_fixtures import batchnorm_jobs, runs_frame

from reglab.report import experiments as exps
from reglab.report import runinfo


def test_batchnorm_tables_read_steps_to_accuracy_and_percentile_drift() -> None:
    _, jobs = batchnorm_jobs()  # test error 2.5 + 80·exp(−step/rate), evaluated every 1,000
    report = exps.plot_experiment("batchnorm", runs_frame(jobs, "batchnorm"))
    tables = dict(report.tables)
    steps = tables["Updates to reach a test accuracy (Fig 1a)"].set_index(
        ["network", "test accuracy ≥ %"]
    )
    # ≥ 90 % ⇔ error ≤ 10 ⇔ step ≥ rate·ln(80/7.5): BN (rate 8,000) 18,937 → the 19,000 eval
    assert steps.loc[("with BN", 90.0), "updates (mean of those reached)"] == 19000
    assert steps.loc[("without BN", 90.0), "updates (mean of those reached)"] == 48000
    assert steps.loc[("with BN", 97.0), "per seed"] == "41,000, 41,000"
    assert steps.loc[("without BN", 97.0), "reached"] == "0/2"  # would need 101k steps
    assert steps.loc[("without BN", 97.0), "per seed"] == "—, —"
    assert np.isnan(steps.loc[("with BN", 98.0), "updates (mean of those reached)"])
    drift = tables["The sigmoid input's percentiles over training (Fig 1b, c)"].set_index(
        ["network", "percentile"]
    )
    assert drift.loc[("without BN", "15"), "first"] == pytest.approx(-1.0)
    assert drift.loc[("without BN", "15"), "last"] == pytest.approx(-3.0)
    assert drift.loc[("without BN", "15"), "range (max − min)"] == pytest.approx(2.0)
    assert drift.loc[("with BN", "85"), "range (max − min)"] == pytest.approx(0.0)


def test_batchnorm_keeps_extra_swept_settings_apart() -> None:
    """A sweep with optimizer.lr=0.01,0.05 added: one row per lr, never their average."""
    _, jobs = batchnorm_jobs()
    swept = []
    for lr, slow in (("0.01", 2.0), ("0.05", 1.0)):
        for job in copy.deepcopy(jobs):
            job["overrides"] = ["experiment=batchnorm", f"optimizer.lr={lr}", *job["overrides"]]
            job["metrics"]["test_error"] *= slow
            swept.append(job)
    runs = runs_frame(swept, "batchnorm")
    labels = runinfo.swept_settings(runs, exclude=("model.batchnorm", "seed"))
    assert set(labels) == {"optimizer.lr=0.01", "optimizer.lr=0.05"}  # constants left out
    final = dict(exps.plot_experiment("batchnorm", runs).tables)["Final test error %"]
    final = final.set_index("network")["final test error %"]
    assert final["with BN (optimizer.lr=0.01)"] == pytest.approx(5.0)
    assert final["with BN (optimizer.lr=0.05)"] == pytest.approx(2.5)
    assert len(final) == 4
