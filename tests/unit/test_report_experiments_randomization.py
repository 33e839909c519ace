"""reglab.report.experiments.randomization: thousands of steps, published points marked."""

from __future__ import annotations

import pytest
from report_fixtures import randomization_jobs, runs_frame

from reglab.report import experiments as exps
from reglab.report.stats import DIFF


def test_randomization_uses_thousands_of_steps_and_marks_published_points() -> None:
    _, jobs = randomization_jobs()
    report = exps.plot_experiment("randomization", runs_frame(jobs, "randomization"))
    ax = report.figure.axes[0]
    assert ax.get_xlabel() == "thousands of steps"
    measured = next(ln for ln in ax.get_lines() if ln.get_label().endswith("random labels"))
    assert measured.get_xdata().max() == pytest.approx(20.0)  # 20,000 steps → 20
    table = report.tables[0][1].set_index("corruption")
    assert table.loc["random labels", "published (k steps)"] == 14.0
    assert table.loc["random labels", DIFF] == pytest.approx(15.1 - 14.0)
    assert table.loc["true labels", "runs fitted"] == "2/2"
    assert table.loc["random labels", "published / true labels"] == pytest.approx(14.0 / 4.5)
    assert table.loc["true labels", "measured / true labels"] == 1.0
