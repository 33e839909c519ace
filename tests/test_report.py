"""reglab-report: sweeps are found and read from summaries only, failed jobs are listed and
never plotted, every figure carries the published series (and only where one exists),
measured-vs-published differences are right, and the page renders in headless Chromium.

Everything runs on synthetic sweep folders (tests/report_fixtures.py): no training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import require_chromium
from PIL import Image
from report_fixtures import (
    EXPERIMENT_JOBS,
    dropout_rate_jobs,
    make_all,
    make_sweep,
    user_sweep_jobs,
)

from reglab.report import cli, runinfo, sweeps, tables
from reglab.report import experiments as exps
from reglab.report import published as pub
from reglab.report.history import history_column
from reglab.report.plotting import FigureReport, published_label
from reglab.report.stats import DIFF, compare

FAILED_ERROR = 99.0  # test error written into the failed/diverged summaries: must never plot
DIVERGED_ERROR = 77.0


# --------------------------------------------------------------------------- fixtures


def _fig9a_with_problems(root: Path) -> Path:
    """Fig 9a sweep: 20 jobs, of which 1 failed, 1 diverged, 1 killed, 1 never started."""
    args, jobs = dropout_rate_jobs("dropout_rate_fixed_n")
    by_key = {tuple(j["overrides"]): j for j in jobs}
    by_key[("dropout.p_hidden=0.5", "seed=1")] |= {
        "status": "failed",
        "metrics": {"test_error": FAILED_ERROR},
        "error": "RuntimeError: CUDA out of memory",
    }
    by_key[("dropout.p_hidden=0.8", "seed=1")] |= {
        "status": "diverged",
        "metrics": {"test_error": DIVERGED_ERROR},
        "error": "loss is nan at step 1200",
    }
    by_key[("dropout.p_hidden=0.6", "seed=1")] |= {"status": None}  # killed: no summary
    del by_key[("dropout.p_hidden=0.7", "seed=1")]  # never started: no folder
    return make_sweep(root, "dropout_rate_fixed_n", args, list(by_key.values()))


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log_dir = tmp_path_factory.mktemp("logs")
    skip = ("dropout_rate_fixed_n", "batchnorm")  # a sweep with problems; none
    experiments = [e for e in EXPERIMENT_JOBS if e not in skip]
    make_all(log_dir, experiments)
    _fig9a_with_problems(log_dir / "sweeps" / "dropout_rate_fixed_n" / "quick")
    args, jobs = user_sweep_jobs()  # a sweep of the user's own: the generic figure
    make_sweep(log_dir / "sweeps" / "my_sweep" / "quick", "my_sweep", args, jobs)
    return log_dir


@pytest.fixture(scope="module")
def site(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    ill = out / "illustrations"
    ill.mkdir()
    _fake_model_illustration(ill, "proximal_l1", "tab:green", {"proximal l1": {"zeros": 0.8}})
    assert cli.main([str(logs / "sweeps"), "--out", str(out)]) == 0
    return out / "index.html"


def _fake_model_illustration(folder: Path, stem: str, color: str, numbers: dict) -> None:
    """What a reglab.illustrate module leaves behind: a PNG and its JSON."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [0, 1], color=color, lw=8)
    fig.savefig(folder / f"{stem}.png")
    caption = f"caption of {stem}"
    (folder / f"{stem}.json").write_text(json.dumps({"caption": caption, "numbers": numbers}))


# --------------------------------------------------------------------------- reading sweeps


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


# --------------------------------------------------------------------------- figures


def _labels(report: FigureReport) -> list[str]:
    return [
        line.get_label() for ax in report.figure.axes for line in [*ax.get_lines(), *ax.collections]
    ]


@pytest.mark.parametrize("experiment", ["dropout_rate_fixed_n", "dropout_rate_fixed_pn"])
def test_fig9_draws_the_published_series_and_the_difference(experiment: str) -> None:
    _, jobs = dropout_rate_jobs(experiment)  # measured = published + 0.3 + 0.1 * seed
    runs = _runs_of(jobs, experiment)
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


def _runs_of(jobs: list[dict], experiment: str) -> pd.DataFrame:
    rows = []
    for job in jobs:
        row = dict.fromkeys(sweeps.RUN_COLUMNS)
        row |= {
            "experiment": experiment,
            "status": "completed",
            "overrides": job["overrides"],
            "seed": job.get("seed", 0),
            "choices": job.get("choices", {}),
            "config": job.get("config", {}),
            "metrics": job.get("metrics", {}),
            "history": job.get("history", []),
        }
        row |= {k: job.get("metrics", {}).get(k) for k in sweeps.METRIC_COLUMNS}
        rows.append(row)
    return pd.DataFrame(rows, columns=list(sweeps.RUN_COLUMNS))


@pytest.mark.parametrize(
    ("experiment", "has_published"),
    [
        ("data_size", False),
        ("architectures", True),
        ("randomization", True),
        ("label_corruption", True),
        ("batchnorm", False),
        ("penalties", False),
        ("regularizer_comparison", True),
    ],
)
def test_published_series_only_where_the_paper_has_numbers(
    experiment: str, has_published: bool
) -> None:
    from report_fixtures import EXPERIMENT_JOBS

    _, jobs = EXPERIMENT_JOBS[experiment]()
    report = exps.plot_experiment(experiment, _runs_of(jobs, experiment))
    published = [lb for lb in _labels(report) if lb.startswith("published")]
    assert bool(published) == has_published, published
    for title, table in report.tables:
        assert table.attrs.get("source"), f"{title}: no source/ 'no published numbers' note"


def test_label_corruption_draws_each_published_model_and_relative_time() -> None:
    from report_fixtures import label_corruption_jobs

    _, jobs = label_corruption_jobs()
    report = exps.plot_experiment("label_corruption", _runs_of(jobs, "label_corruption"))
    ax_b, ax_c = report.figure.axes
    for model in ("inception", "alexnet", "mlp_1x512"):
        series = pub.series("label_corruption", f"test_error/{model}")
        line = next(ln for ln in ax_c.get_lines() if ln.get_label() == published_label(series))
        np.testing.assert_allclose(line.get_ydata(), series["y"])  # % (the paper: fraction)
    table = report.tables[0][1]
    at_zero = table[table["q"] == 0.0]
    np.testing.assert_allclose(at_zero["relative time"], 1.0)  # relative to q = 0 by definition
    row = table[(table["q"] == 1.0) & table["variant"].str.contains("none")].iloc[0]
    assert row["published model"] == "MLP 1x512"
    assert row["test error " + DIFF] == pytest.approx(87.0 - 90.0)
    assert ax_b.get_xlabel() == "label corruption q"


def test_label_corruption_counts_the_runs_that_fitted() -> None:
    """A run that never fits has no steps to fit: the table says how many runs it averages."""
    from report_fixtures import label_corruption_jobs

    _, jobs = label_corruption_jobs()
    for job in jobs:
        if job["overrides"] == ["corruption.q=1.0", "dropout.p_hidden=1.0", "seed=1"]:
            job["metrics"]["steps_to_fit"] = None
    report = exps.plot_experiment("label_corruption", _runs_of(jobs, "label_corruption"))
    table = report.tables[0][1]
    plain = table[table["variant"].str.contains("none")].set_index("q")
    assert plain.loc[1.0, "runs fitted"] == "1/2"
    assert plain.loc[0.0, "runs fitted"] == "2/2"
    assert plain.loc[1.0, "relative time"] == pytest.approx(2000 / 1025)  # seed 0 alone


def test_label_corruption_treats_zero_lambda_as_no_regularizer() -> None:
    cfg = {"dropout": {"p_hidden": 1.0}, "regularizer": {"_target_": "x.L2", "lam": 0.0}}
    runs = pd.DataFrame(
        {
            "config": [cfg, cfg | {"regularizer": {"lam": 5e-4}}],
            "choices": [{"regularizer": "l2"}, {"regularizer": "l2"}],
        }
    )
    assert list(runinfo.regularization(runs)) == ["none", "l2 λ=0.0005"]


def test_data_size_gain_is_paired_by_seed() -> None:
    from report_fixtures import data_size_jobs

    _, jobs = data_size_jobs()  # seed 1 adds 0.2 to both arms: the pairs' gains agree
    report = exps.plot_experiment("data_size", _runs_of(jobs, "data_size"))
    title, gains = report.tables[1]
    assert "paired by seed" in title
    gains = gains.set_index("size")
    base = 40.0 / np.sqrt(5000 / 100)
    assert gains.loc[5000, "gain"] == pytest.approx(0.1 * base)  # without = 1.1 × with
    assert gains.loc[5000, "sd"] == pytest.approx(0.0)  # unpaired, the seeds' spread is 0.14
    assert gains.loc[100, "gain"] == pytest.approx(0.0)
    assert gains.loc[5000, "seeds"] == 2
    assert gains.loc[5000, "per seed"] == f"{0.1 * base:+.2f}, {0.1 * base:+.2f}"


def test_batchnorm_tables_read_steps_to_accuracy_and_percentile_drift() -> None:
    from report_fixtures import batchnorm_jobs

    _, jobs = batchnorm_jobs()  # test error 2.5 + 80·exp(−step/rate), evaluated every 1,000
    report = exps.plot_experiment("batchnorm", _runs_of(jobs, "batchnorm"))
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
    import copy

    from report_fixtures import batchnorm_jobs

    _, jobs = batchnorm_jobs()
    swept = []
    for lr, slow in (("0.01", 2.0), ("0.05", 1.0)):
        for job in copy.deepcopy(jobs):
            job["overrides"] = ["experiment=batchnorm", f"optimizer.lr={lr}", *job["overrides"]]
            job["metrics"]["test_error"] *= slow
            swept.append(job)
    runs = _runs_of(swept, "batchnorm")
    labels = runinfo.swept_settings(runs, exclude=("model.batchnorm", "seed"))
    assert set(labels) == {"optimizer.lr=0.01", "optimizer.lr=0.05"}  # constants left out
    final = dict(exps.plot_experiment("batchnorm", runs).tables)["Final test error %"]
    final = final.set_index("network")["final test error %"]
    assert final["with BN (optimizer.lr=0.01)"] == pytest.approx(5.0)
    assert final["with BN (optimizer.lr=0.05)"] == pytest.approx(2.5)
    assert len(final) == 4


def test_settings_swept_beside_the_grid_get_figures_of_their_own(tmp_path: Path) -> None:
    """``make sweep EXP=penalties ARGS="optimizer.lr=0.01,0.1"``: one figure and one table
    per lr, each from that lr's runs, never a mean over both."""
    import copy

    from report_fixtures import penalties_jobs

    grid_args, jobs = penalties_jobs()
    swept = []
    for lr, worse in (("0.01", 0.0), ("0.1", 10.0)):
        for job in copy.deepcopy(jobs):
            job["overrides"].append(f"optimizer.lr={lr}")
            job["metrics"]["test_error"] += worse
            swept.append(job)
    grid = dict(arg.split("=", 1) for arg in grid_args)  # the experiment file's grid
    root = tmp_path / "logs" / "sweeps" / "penalties" / "quick"
    make_sweep(root, "penalties", ["optimizer.lr=0.01,0.1"], swept, grid=grid)
    # One job was first run with its data elsewhere: a key left out of folder names,
    # which never makes a setting of its own.
    multirun = yaml.safe_load((root / "multirun.yaml").read_text())
    multirun["hydra"]["job"] = {"config": {"override_dirname": {"exclude_keys": ["data.root"]}}}
    (root / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    moved = next(root.glob("*optimizer.lr=0.1,*seed=0/summary.json"))
    summary = json.loads(moved.read_text())
    moved.write_text(json.dumps(summary | {"overrides": [*summary["overrides"], "data.root=/x"]}))
    sweep = sweeps.read_sweep(root)
    assert sweep.grid_keys == {"regularizer", "regularizer.lam", "seed"}
    assert len(sweep.completed) == 36 and not len(sweep.incomplete)

    reports = exps.plot_sweep("penalties", sweep.completed, sweep.grid_keys, sweep.unnamed_keys)
    assert [setting for setting, _ in reports] == ["optimizer.lr=0.01", "optimizer.lr=0.1"]
    for (_, report), worse in zip(reports, (0.0, 10.0), strict=True):
        table = report.tables[0][1].set_index(["regularizer", "λ"])
        assert table.loc[("l2", 1e-3), "test error %"] == pytest.approx(3.0 + worse)
        assert table.loc[("l2", 1e-3), "seeds"] == 2
    pooled = exps.plot_sweep("penalties", sweep.completed, None)  # grid unknown: one figure
    assert len(pooled) == 1
    assert pooled[0][1].tables[0][1]["seeds"].max() == 4

    out = tmp_path / "site"
    html = cli.build_report([root], out).read_text(encoding="utf-8")
    assert "Runs with optimizer.lr=0.01." in html and "Runs with optimizer.lr=0.1." in html
    assert len(list((out / "figures").glob("penalties-quick--optimizer-lr-*.png"))) == 2
    assert len(list(out.glob("*test-error-and-exact-zeros-by-optimizer-lr-0-1*.csv"))) == 1


def test_randomization_uses_thousands_of_steps_and_marks_published_points() -> None:
    from report_fixtures import randomization_jobs

    _, jobs = randomization_jobs()
    report = exps.plot_experiment("randomization", _runs_of(jobs, "randomization"))
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


def test_architecture_difference_is_distance_to_published_number_or_range() -> None:
    from report_fixtures import architectures_jobs

    _, jobs = architectures_jobs()  # quick-scale style: measured 1.1/1.15 and 1.7/1.75
    for job in jobs:
        job["config"]["architectures"] = {"widths": [1024, 2048]}
    report = exps.plot_experiment("architectures", _runs_of(jobs, "architectures"))
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
    from report_fixtures import architectures_jobs

    _, jobs = architectures_jobs()
    for job in jobs:
        hidden = {1024: 256, 2048: 512}
        job["config"]["model"]["hidden"] = [
            hidden.get(h, h) for h in job["config"]["model"]["hidden"]
        ]
        job["config"]["architectures"] = {"widths": [256, 512]}
    table = exps.plot_experiment("architectures", _runs_of(jobs, "architectures")).tables[0][1]
    row = table[table["architecture"] == "3x512"].iloc[0]
    assert row["paper's net"] == "3x2048"
    assert not np.isnan(row["published low"])


# --------------------------------------------------------------------------- the page


def test_page_holds_every_figure_table_and_illustration(site: Path) -> None:
    html = site.read_text(encoding="utf-8")
    out = site.parent
    # 8 experiment figures + a user's sweep (generic) + 2 numpy + 1 model illustration
    assert html.count('src="data:image/png;base64,') == 12
    assert "gets the generic figure" in html and "Table 9" in html
    assert "batchnorm: no sweep" in html  # no batchnorm sweep: the page says so
    assert "no batchnorm sweep was found" in html
    assert "caption of proximal_l1" in html
    assert "Not generated yet: autoencoder_features" in html
    fig9 = next(out.glob("*fig-9a*test-error-against-p.csv"))
    table = pd.read_csv(fig9)
    assert {"measured", "published", DIFF} <= set(table.columns)
    assert table[DIFF].notna().any()
    seeds = table.set_index("p")["seeds"]
    assert seeds[0.5] == 1 and seeds[0.8] == 1 and seeds[0.4] == 2  # failed/diverged left out
    assert "Figure 9a" in next(out.glob("*fig-9a*test-error-against-p.md")).read_text()
    excluded = pd.read_csv(next(out.glob("*fig-9a*runs-not-included*.csv")))
    assert len(excluded) == 4
    assert "NOT finished" in html
    assert "Completed runs (16 rows)" in html  # folded listing of the plotted runs
    for png in (out / "figures").glob("*.png"):
        with Image.open(png) as img:
            assert img.size[0] > 500


def test_rerender_removes_tables_it_no_longer_writes(tmp_path: Path) -> None:
    swept = make_all(tmp_path / "logs", ["dropout_rate_fixed_n", "penalties"])
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.csv").write_text("mine\n")  # not the report's: never touched
    cli.build_report([tmp_path / "logs" / "sweeps"], out)
    stale = {p.name for p in out.glob("*.csv")}
    cli.build_report([swept["penalties"]], out)
    left = {p.name for p in out.glob("*.csv")}
    assert "notes.csv" in left
    assert not any("fig-9a" in name for name in left) and any("fig-9a" in n for n in stale)
    assert any("penalties" in name for name in left)


def test_sweep_details_give_scale_wall_time_and_config(logs: Path) -> None:
    (sweep,) = sweeps.find_sweeps([logs / "sweeps" / "penalties"])
    details = tables.sweep_details(sweep)
    assert details["scale"] == "quick"
    assert details["summed wall time"] == "3m45s"  # 18 jobs x 12.5 s
    assert "regularizer=l1,l1_proximal,l2" in details["command overrides"]
    assert details["varied: regularizer.lam"] == "1e-05, 0.0001, 0.001"


# --------------------------------------------------------------------------- real browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    cmd = [
        require_chromium(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,3000",
        site.as_uri(),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("chromium did not finish within 120 s")
    assert proc.returncode == 0, err[-3000:]
    page_errors = [
        ln for ln in err.splitlines() if "CONSOLE" in ln or "Refused to" in ln or "net::ERR" in ln
    ]
    assert not page_errors, page_errors  # CSP violations, failed loads, script errors
    with Image.open(shot) as img:
        assert img.size == (1200, 3000)
        rgb = np.asarray(img.convert("RGB"), dtype=int)
    # matplotlib's tab:blue is on the first figure (Fig 9a): the images were decoded
    close = np.abs(rgb - np.array((31, 119, 180))).sum(axis=-1) < 30
    assert close.sum() > 200, "no figure pixels: the embedded images were not rendered"


# --------------------------------------------------------------------------- helpers


def test_yaml_of_fixture_is_what_hydra_writes(logs: Path) -> None:
    """Guard on the fixture itself: the multirun.yaml keys the reader relies on exist."""
    data = yaml.safe_load((logs / "sweeps" / "penalties" / "quick" / "multirun.yaml").read_text())
    assert data["hydra"]["sweeper"]["_target_"].endswith("BasicSweeper")
    assert data["hydra"]["overrides"]["task"][0] == "name=penalties"


def test_loss_curves_prefer_the_mean_since_the_previous_evaluation():
    """Fig. 1a plots a running average: the history's mean since the last evaluation, where
    a run has it, over the loss of the last mini-batch."""
    new = pd.DataFrame({"step": [50], "train/loss_step": [2.0], "train/loss_since_eval": [1.0]})
    old = pd.DataFrame({"step": [50], "train/loss_step": [2.0]})
    assert history_column(new, "train/loss").tolist() == [1.0]
    assert history_column(old, "train/loss").tolist() == [2.0]


def test_each_section_says_which_data_its_runs_used(tmp_path: Path) -> None:
    """From the summaries: the quick randomization runs used MNIST, not the paper's CIFAR-10."""
    from report_numbers import write_recorded_sweeps

    from reglab.report.sections import experiment_section

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
