"""reglab.report.experiments.dropout_rate_fixed_n (and _pn, drawn by the same fig9):
the published series and the measured-minus-published difference."""

from __future__ import annotations

import numpy as np
import pytest
from report_fixtures import dropout_rate_jobs, runs_frame

from reglab import published as pub
from reglab.report import experiments as exps
from reglab.report.plotting import published_label
from reglab.report.stats import DIFF


@pytest.mark.parametrize("experiment", ["dropout_rate_fixed_n", "dropout_rate_fixed_pn"])
def test_fig9_draws_the_published_series_and_the_difference(experiment: str) -> None:
    _, jobs = dropout_rate_jobs(experiment)  # measured = published + 0.3 + 0.1 * seed
    runs = runs_frame(jobs, experiment)
    report = exps.plot_experiment(experiment, runs)
    ax = report.figure.axes[0]
    assert ax.get_xlabel().startswith("probability of retaining")
    assert "%" in ax.get_ylabel()
    published = pub.series(experiment, "test_error")
    lines = {line.get_label(): line for line in ax.get_lines()}
    label = published_label(published)
    assert "read off figure" in label
    np.testing.assert_allclose(lines[label].get_ydata(), published["y"])
    table = report.tables[0][1]
    np.testing.assert_allclose(table["published"], published["y"])
    np.testing.assert_allclose(table[DIFF], 0.35)  # mean of +0.3 and +0.4
    np.testing.assert_allclose(table["sd"], np.std([0.3, 0.4], ddof=1))
    assert table.attrs["exactness"].startswith("figure")
