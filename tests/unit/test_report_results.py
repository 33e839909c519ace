"""The notebook API: reglab.results (one flat row per job, completed and failed alike) and
reglab.history (learning curves in long form); reglab-runs --csv is the same frame.
(That ``import reglab`` stays light: tests/e2e/test_import.py.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import batchnorm_jobs, make_sweep, penalties_jobs

import reglab
from reglab.report import runs as rruns


@pytest.fixture()
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """penalties (quick: 1 failed, 1 killed, 1 never started; paper: 2 jobs), batchnorm."""
    logs = tmp_path / "logs"
    monkeypatch.setenv("REGLAB_LOG_DIR", str(logs))
    args, jobs = penalties_jobs()
    jobs[0] |= {"status": "failed", "metrics": {}, "error": "RuntimeError: boom"}
    jobs[1] |= {"status": None}
    make_sweep(logs / "sweeps" / "penalties" / "quick", "penalties", args, jobs[:-1])
    make_sweep(
        logs / "sweeps" / "penalties" / "paper", "penalties", args[:1], jobs[2:4], scale="paper"
    )
    make_sweep(logs / "sweeps" / "batchnorm" / "quick", "batchnorm", *batchnorm_jobs())
    return logs


def test_results_is_one_flat_row_per_job(log_dir: Path) -> None:
    frame = reglab.results("penalties")
    assert len(frame) == 18 + 2
    quick = reglab.results("penalties", scale="quick")
    assert len(quick) == 18 and set(quick["scale"]) == {"quick"}
    assert quick["status"].value_counts().to_dict() == {
        "completed": 15,
        "failed": 1,
        "no summary": 1,
        "not started": 1,
    }
    done = quick[quick["status"] == "completed"]
    row = done[(done["regularizer"] == "l2") & (done["regularizer.lam"] == 1e-4)]
    assert sorted(row["seed"]) == [0, 1]
    assert list(row["test_error"]) == pytest.approx([2.1, 2.1])  # 2 + 1000 λ
    assert row["zero_weight_fraction"].tolist() == [0.0, 0.0]
    assert row["wall_time_s"].tolist() == [12.5, 12.5]
    assert row["regularizer._target_"].iloc[0] == "reglab.regularizers.L2"  # config, dotted
    assert "regularizer" in frame.attrs["choices"] and "test_error" in frame.attrs["metrics"]
    assert "regularizer.lam" in frame.attrs["config"]
    failed = quick[quick["status"] == "failed"].iloc[0]
    assert failed["error"] == "RuntimeError: boom" and pd.isna(failed["test_error"])
    assert not any(isinstance(v, dict) for v in frame.iloc[0])  # nothing nested


def test_results_of_folders_and_of_a_single_run(log_dir: Path) -> None:
    assert len(reglab.results(log_dir / "sweeps" / "batchnorm" / "quick")) == 4
    assert len(reglab.results(log_dir)) == 24
    assert len(reglab.results()) == 24  # $REGLAB_LOG_DIR
    job = next((log_dir / "sweeps" / "batchnorm" / "quick").glob("*seed=1"))
    single = reglab.results(job)
    assert len(single) == 1 and single["seed"].item() == 1
    with pytest.raises(FileNotFoundError, match="no sweeps/nothing"):
        reglab.results("nothing")


def test_history_is_long_form(log_dir: Path) -> None:
    curves = reglab.history("batchnorm", metrics=["test/error"])
    assert list(curves.columns) == [
        "experiment",
        "scale",
        "job",
        "seed",
        "status",
        "path",
        "step",
        "epoch",
        "metric",
        "value",
    ]
    assert len(curves) == 4 * 51  # 4 runs, evaluations every 1,000 of 50,000 steps
    bn = reglab.results("batchnorm")[["path", "model.batchnorm"]]
    merged = curves.merge(bn, on="path")
    first = merged[(merged["step"] == 0) & merged["model.batchnorm"]]
    assert first["value"].tolist() == pytest.approx([82.5, 82.5])  # 2.5 + 80 e^0
    every = reglab.history("batchnorm")
    assert set(every["metric"]) == {
        "test/error",
        "probe/last_preact_p15",
        "probe/last_preact_p50",
        "probe/last_preact_p85",
    }


def test_reglab_runs_csv_is_the_results_frame(log_dir: Path, capsys) -> None:
    assert rruns.main([str(log_dir), "-e", "penalties", "-w", "regularizer=l2", "--csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    # quick: 5 l2 jobs and the never-started one (l2, λ = 1e-3, seed 1); paper: none
    assert len(table) == 6
    assert table["status"].value_counts().to_dict() == {"completed": 5, "not started": 1}
    assert {"status", "seed", "test_error", "regularizer.lam", "wall_time_s"} <= set(table)
    assert set(table["regularizer"].dropna()) == {"l2"}  # a job never started chose nothing
    assert rruns.main([str(log_dir), "-w", "regularizer=l2", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == len(table)
    assert records[0]["choices"]["regularizer"] == "l2"
