"""reglab.report.experiments.data_size: dropout's gain, paired by seed."""

from __future__ import annotations

import numpy as np
import pytest
from report_fixtures import data_size_jobs, runs_frame

from reglab.report import experiments as exps


def test_data_size_gain_is_paired_by_seed() -> None:
    _, jobs = data_size_jobs()  # seed 1 adds 0.2 to both arms: the pairs' gains agree
    report = exps.plot_experiment("data_size", runs_frame(jobs, "data_size"))
    title, gains = report.tables[1]
    assert "paired by seed" in title
    gains = gains.set_index("size")
    base = 40.0 / np.sqrt(5000 / 100)
    assert gains.loc[5000, "gain"] == pytest.approx(0.1 * base)  # without = 1.1 × with
    assert gains.loc[5000, "sd"] == pytest.approx(0.0)  # unpaired, the seeds' spread is 0.14
    assert gains.loc[100, "gain"] == pytest.approx(0.0)
    assert gains.loc[5000, "seeds"] == 2
    assert gains.loc[5000, "per seed"] == f"{0.1 * base:+.2f}, {0.1 * base:+.2f}"
