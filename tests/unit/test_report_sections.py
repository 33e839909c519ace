"""reglab.report.sections: an experiment's section says which data its runs used."""

from __future__ import annotations

from pathlib import Path

from report_fixtures import dropout_rate_jobs, make_sweep
from report_numbers import write_recorded_sweeps

from reglab.report import sweeps
from reglab.report.sections import experiment_section


def test_each_section_says_which_data_its_runs_used(tmp_path: Path) -> None:
    """From the summaries: the quick randomization runs used MNIST, not the paper's CIFAR-10."""
    root = write_recorded_sweeps(tmp_path / "real")["randomization"]
    section = experiment_section(sweeps.read_sweep(root), tmp_path / "figs", "randomization")
    assert (
        "Data of these runs (from their summaries): MNIST, 2,000 training images, hold-out 0, "
        "inputs: per-image whitening, no crop, not binarized." in section.text
    )
    assert "In the paper: Randomization tests (Zhang et al.), CIFAR-10." in section.text
    args, jobs = dropout_rate_jobs("dropout_rate_fixed_n", seeds=(0,))
    swept = sweeps.read_sweep(make_sweep(tmp_path / "sw", "dropout_rate_fixed_n", args, jobs))
    text = experiment_section(swept, tmp_path / "figs", "fig9a").text
    assert "MNIST, 50,000 training images, hold-out 10,000, inputs: standardized" in text
