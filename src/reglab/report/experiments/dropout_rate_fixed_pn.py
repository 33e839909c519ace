"""Srivastava et al. 2014 Fig 9b: error % against p with pn (the expected number of units
kept) fixed; drawn as Fig 9a is (:func:`.dropout_rate_fixed_n.fig9`)."""

from __future__ import annotations

import pandas as pd

from reglab.report.experiments.dropout_rate_fixed_n import fig9
from reglab.report.plotting import FigureReport

TITLE = "Srivastava et al. 2014 Fig 9b"


def build(runs: pd.DataFrame) -> FigureReport:
    """Fig 9b: pn fixed."""
    return fig9(runs, "dropout_rate_fixed_pn")
