"""reglab.report.sweeps: sweeps are found and read from their summaries only (the latest
of each experiment; job folders of an earlier sweep ignored), each job listed with its
status, failed jobs listed and never plotted; the expected jobs resolved as Hydra does;
a sweep's details (reglab.report.tables). Synthetic sweep folders (tests/report_fixtures.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from report_fixtures import dropout_rate_jobs, make_sweep
from report_site_fixtures import DIVERGED_ERROR, FAILED_ERROR, make_report_logs

from reglab.report import cli, sweeps, tables
from reglab.report import experiments as exps


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every experiment's synthetic sweep, Fig 9a's with a failed, a diverged, a killed and
    a never-started job, and a sweep of the user's own (report_site_fixtures.make_report_logs)."""
    return make_report_logs(tmp_path_factory.mktemp("logs"))


def test_sweep_lists_every_job_with_its_status(logs: Path) -> None:
    (sweep,) = sweeps.find_sweeps([logs / "sweeps" / "dropout_rate_fixed_n"])
    assert sweep.experiment == "dropout_rate_fixed_n" and sweep.scale == "quick"
    assert sweep.status_counts() == {
        "completed": 16,
        "failed": 1,
        "diverged": 1,
        sweeps.NO_SUMMARY: 1,
        sweeps.NOT_STARTED: 1,
    }
    assert not sweep.finished
    assert set(sweep.completed["status"]) == {"completed"}
    assert len(sweep.incomplete) == 4


def test_failed_runs_are_listed_not_plotted(logs: Path) -> None:
    (sweep,) = sweeps.find_sweeps([logs / "sweeps" / "dropout_rate_fixed_n"])
    report = exps.plot_experiment(sweep.experiment, sweep.completed)
    plotted = np.concatenate([line.get_ydata() for line in report.figure.axes[0].get_lines()])
    assert FAILED_ERROR not in plotted and DIVERGED_ERROR not in plotted
    test_table = report.tables[0][1].set_index("p")
    assert test_table.loc[0.5, "seeds"] == 1  # only the completed seed of p = 0.5
    assert test_table.loc[0.4, "seeds"] == 2
    listed = tables.excluded_table(sweep.incomplete)
    assert sorted(listed["status"]) == sorted(
        ["failed", "diverged", sweeps.NO_SUMMARY, sweeps.NOT_STARTED]
    )
    assert "CUDA out of memory" in " ".join(listed["reason"])


def test_interrupted_job_leaves_the_sweep_unfinished(tmp_path: Path) -> None:
    args, jobs = dropout_rate_jobs("dropout_rate_fixed_n", seeds=(0,))
    jobs[3] |= {"status": "interrupted", "metrics": {"test_error": 55.0}, "error": "step 7"}
    sweep = sweeps.read_sweep(make_sweep(tmp_path / "sw", "dropout_rate_fixed_n", args, jobs))
    assert not sweep.finished
    assert list(sweep.incomplete["status"]) == ["interrupted"]
    assert 55.0 not in set(sweep.completed["test_error"])


def test_latest_sweep_of_each_experiment_is_chosen(tmp_path: Path) -> None:
    args, jobs = dropout_rate_jobs("dropout_rate_fixed_n", seeds=(0,))
    old = make_sweep(
        tmp_path / "sweeps" / "dropout_rate_fixed_n" / "quick",
        "dropout_rate_fixed_n",
        args,
        jobs,
        scale="quick",
    )
    new = make_sweep(
        tmp_path / "sweeps" / "dropout_rate_fixed_n" / "paper",
        "dropout_rate_fixed_n",
        args,
        jobs,
        scale="paper",
    )
    os.utime(old / "multirun.yaml", (1_000_000, 1_000_000))
    chosen = cli.select_sweeps([tmp_path / "sweeps"])
    assert [s.root for s in chosen] == [new.resolve()]
    assert len(cli.select_sweeps([tmp_path / "sweeps"], all_sweeps=True)) == 2
    assert [s.root for s in cli.select_sweeps([old])] == [old.resolve()]  # named explicitly


def test_job_folders_of_an_earlier_sweep_are_ignored(tmp_path: Path) -> None:
    args, jobs = dropout_rate_jobs("dropout_rate_fixed_n", seeds=(0,))
    root = make_sweep(tmp_path / "sw", "dropout_rate_fixed_n", args, jobs)
    stale = {"overrides": ["dropout.p_hidden=0.5", "seed=7"], "metrics": {"test_error": 50.0}}
    make_sweep(tmp_path / "sw", "dropout_rate_fixed_n", ["seed=7"], [stale])
    make_sweep(tmp_path / "sw", "dropout_rate_fixed_n", args, [])  # the later sweep's yaml
    sweep = sweeps.read_sweep(root)
    assert sweep.ignored == 1
    assert 50.0 not in set(sweep.runs["test_error"])
    assert len(sweep.runs) == 10


def test_expected_jobs_resolve_sweeper_params_like_hydra() -> None:
    multirun = {
        "hydra": {
            "sweeper": {
                "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "params": {"regularizer.lam": "1e-5,1e-3", "seed": "${scale.seeds}"},
            },
            "overrides": {"task": ["experiment=penalties", "regularizer.lam=1e-4"]},
        },
        "scale": {"seeds": "0,1,2"},
    }
    jobs = sweeps.expected_jobs(multirun)
    assert len(jobs) == 3  # the command line's λ wins over the params' λ sweep
    assert all("regularizer.lam=0.0001" in key for key in jobs)
    assert {s for key in jobs for s in key if s.startswith("seed=")} == {
        "seed=0",
        "seed=1",
        "seed=2",
    }


def test_sweep_details_give_scale_wall_time_and_config(logs: Path) -> None:
    (sweep,) = sweeps.find_sweeps([logs / "sweeps" / "penalties"])
    details = tables.sweep_details(sweep)
    assert details["scale"] == "quick"
    assert details["summed wall time"] == "3m45s"  # 18 jobs x 12.5 s
    assert "regularizer=l1,l1_proximal,l2" in details["command overrides"]
    assert details["varied: regularizer.lam"] == "1e-05, 0.0001, 0.001"


def test_yaml_of_fixture_is_what_hydra_writes(logs: Path) -> None:
    """Guard on the fixture itself: the multirun.yaml keys the reader relies on exist."""
    data = yaml.safe_load((logs / "sweeps" / "penalties" / "quick" / "multirun.yaml").read_text())
    assert data["hydra"]["sweeper"]["_target_"].endswith("BasicSweeper")
    assert data["hydra"]["overrides"]["task"][0] == "name=penalties"
