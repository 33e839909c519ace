"""reglab.report.experiments.architectures: the difference to a published number or range,
and shrunk nets compared with the paper's net of the same shape."""

from __future__ import annotations

import numpy as np
import pytest
from report_fixtures import architectures_jobs, runs_frame

from reglab.report import experiments as exps
from reglab.report.stats import DIFF


def test_architecture_difference_is_distance_to_published_number_or_range() -> None:
    _, jobs = architectures_jobs()  # quick-scale style: measured 1.1/1.15 and 1.7/1.75
    for job in jobs:
        job["config"]["architectures"] = {"widths": [1024, 2048]}
    report = exps.plot_experiment("architectures", runs_frame(jobs, "architectures"))
    table = report.tables[0][1].set_index(["architecture", "regularization"])
    t9 = table.loc[("1024-1024-2048", "dropout p=0.5 + max_norm c=2")]
    assert t9["published low"] == t9["published high"] == 1.05  # Table 9, dropout + max-norm
    assert t9[DIFF] == pytest.approx(1.125 - 1.05)
    inside = table.loc[("3x2048", "max_norm c=2")]  # Fig 4 range 1.6–1.85 holds 1.725
    assert (inside["published low"], inside["published high"]) == (1.6, 1.85)
    assert inside[DIFF] == 0.0
    t2 = table.loc[("3x1024", "dropout p=0.5 + max_norm c=2")]
    assert t2["published low"] == 1.06  # Table 2, Dropout NN + max-norm, 3 x 1024


def test_shrunk_architectures_compare_with_the_papers_net_of_the_same_shape() -> None:
    _, jobs = architectures_jobs()
    for job in jobs:
        hidden = {1024: 256, 2048: 512}
        job["config"]["model"]["hidden"] = [
            hidden.get(h, h) for h in job["config"]["model"]["hidden"]
        ]
        job["config"]["architectures"] = {"widths": [256, 512]}
    table = exps.plot_experiment("architectures", runs_frame(jobs, "architectures")).tables[0][1]
    row = table[table["architecture"] == "3x512"].iloc[0]
    assert row["paper's net"] == "3x2048"
    assert not np.isnan(row["published low"])
