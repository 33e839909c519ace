"""reglab.report.history: which history column a curve reads."""

from __future__ import annotations

import pandas as pd

from reglab.report.history import history_column


def test_loss_curves_prefer_the_mean_since_the_previous_evaluation():
    """Fig. 1a plots a running average: the history's mean since the last evaluation, where
    a run has it, over the loss of the last mini-batch."""
    new = pd.DataFrame({"step": [50], "train/loss_step": [2.0], "train/loss_since_eval": [1.0]})
    old = pd.DataFrame({"step": [50], "train/loss_step": [2.0]})
    assert history_column(new, "train/loss").tolist() == [1.0]
    assert history_column(old, "train/loss").tolist() == [2.0]
