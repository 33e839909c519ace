"""reglab.report.stats: measured against published, joined on x."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reglab.report.stats import DIFF, compare


def test_compare_joins_on_x_and_subtracts() -> None:
    measured = pd.DataFrame(
        {"x": [0.5, 1.0, 0.3], "mean": [2.0, 3.0, 9.0], "sd": [0.1, 0.2, 0.0], "n": [3, 3, 1]}
    )
    published = pd.DataFrame({"x": [0.5, 1.0, 0.7], "y": [1.5, 3.25, 4.0]})
    published.attrs.update(source="Paper, Fig X", exactness="figure")
    table = compare(measured, published)
    assert table["x"].tolist() == [0.3, 0.5, 0.7, 1.0]
    diff = table[DIFF].tolist()
    assert np.isnan(diff[0]) and np.isnan(diff[2])  # one side missing: no difference
    assert diff[1] == pytest.approx(0.5) and diff[3] == pytest.approx(-0.25)
    assert table.attrs["source"] == "Paper, Fig X"
