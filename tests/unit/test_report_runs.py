"""reglab-runs: every run (sweep jobs and single runs) in one table, filtered by experiment,
by ``--where KEY=VALUE`` (override, config value or group choice) and by status; --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_fixtures import make_sweep, penalties_jobs

from reglab.report import runs as rruns
from reglab.report import sweeps


@pytest.fixture()
def log_dir(tmp_path: Path) -> Path:
    args, jobs = penalties_jobs()
    jobs[0] |= {"status": "failed", "metrics": {}}
    jobs[1] |= {"status": None}
    jobs[2] |= {"status": "interrupted", "metrics": {}}
    make_sweep(tmp_path / "sweeps" / "penalties" / "quick", "penalties", args, jobs)
    single = tmp_path / "runs" / "default" / "2026-01-01_00-00-00"
    single.mkdir(parents=True)
    (single / "summary.json").write_text(
        json.dumps(
            {
                "status": "completed",
                "name": "default",
                "overrides": ["dropout=hidden", "dropout.p_hidden=0.5"],
                "choices": {"dropout": "hidden"},
                "config": {"dropout": {"p_hidden": 0.5}},
                "metrics": {"test_error": 1.5},
                "wall_time_s": 3.0,
            }
        )
    )
    return tmp_path


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert rruns.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_lists_sweep_jobs_and_single_runs(log_dir: Path, capsys) -> None:
    records = _json(capsys, str(log_dir), "--json")
    assert len(records) == 19  # 18 sweep jobs + 1 single run
    statuses = [r["status"] for r in records]
    assert statuses.count("failed") == 1 and statuses.count(sweeps.NO_SUMMARY) == 1
    assert statuses.count("interrupted") == 1
    single = next(r for r in records if r["experiment"] == "default")
    assert single["sweep"] is None and single["test_error"] == 1.5


def test_filter_by_experiment_and_status(log_dir: Path, capsys) -> None:
    records = _json(
        capsys, str(log_dir), "--experiment", "penalties", "--status", "completed", "--json"
    )
    assert len(records) == 15
    assert {r["experiment"] for r in records} == {"penalties"}
    stopped = _json(capsys, str(log_dir), "-s", "interrupted", "-s", "failed", "--json")
    assert sorted(r["status"] for r in stopped) == ["failed", "interrupted"]


@pytest.mark.parametrize(
    ("where", "count"),
    [
        ("regularizer.lam=1e-4", 6),  # config value: 1e-4 == 0.0001
        ("regularizer.lam=0.0001", 6),  # the override string itself
        ("regularizer=l1_proximal", 6),  # a config group's choice
        ("dropout.p_hidden=0.5", 1),  # the single run's config
        ("regularizer.lam=0.5", 0),
    ],
)
def test_where_matches_overrides_config_values_and_choices(
    log_dir: Path, capsys, where: str, count: int
) -> None:
    assert len(_json(capsys, str(log_dir), "--where", where, "--json")) == count


def test_several_where_must_all_hold(log_dir: Path, capsys) -> None:
    records = _json(
        capsys, str(log_dir), "-w", "regularizer=l2", "-w", "regularizer.lam=1e-3", "--json"
    )
    assert len(records) == 2
    assert all("regularizer=l2" in r["overrides"] for r in records)


def test_where_without_equals_is_a_usage_error(log_dir: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        rruns.main([str(log_dir), "--where", "dropout.p_hidden"])
    assert exc.value.code == 2


def test_table_shows_experiment_overrides_status_error_and_time(log_dir: Path, capsys) -> None:
    assert rruns.main([str(log_dir), "-e", "penalties", "-w", "regularizer=l1"]) == 0
    out = capsys.readouterr().out
    assert "6 run(s)" in out
    assert "regularizer=l1 regularizer.lam=1e-05 seed=0" in out  # name=… and scale=… hidden
    assert "failed" in out and "no summary" in out
    assert "2.10" in out and "12 s" in out


def test_json_has_no_nan(log_dir: Path, capsys) -> None:
    assert rruns.main([str(log_dir), "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    json.loads(text)
