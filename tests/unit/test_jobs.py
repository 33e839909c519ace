"""Which folders of a sweep are its jobs (reglab.jobs), as the end-of-sweep summary sees them."""

from __future__ import annotations

import json
from pathlib import Path

from report_fixtures import make_sweep

from reglab.jobs import dirname_excluded, job_key
from reglab.summary import NO_SUMMARY
from reglab.sweep import job_statuses


def test_keys_left_out_of_folder_names_do_not_tell_jobs_apart() -> None:
    excluded = dirname_excluded(
        {"hydra": {"job": {"config": {"override_dirname": {"exclude_keys": ["data.root"]}}}}}
    )
    assert excluded == {"data.root"}
    first = job_key(["seed=0", "data.root=/a", "+model.depth=3"], excluded)
    assert first == job_key(["+model.depth=3", "seed=0"], excluded)
    assert first != job_key(["seed=1", "+model.depth=3"], excluded)
    assert dirname_excluded({}) == frozenset()


def test_statuses_cover_the_sweeps_own_jobs_and_name_the_killed_one(tmp_path: Path) -> None:
    root = make_sweep(
        tmp_path / "sweep",
        "penalties",
        ["seed=0,1"],
        [{"overrides": ["seed=0"]}, {"overrides": ["seed=1"], "status": None}],  # 1: killed
    )
    earlier = root / "seed=7"  # a job of an earlier sweep into the same folder: it failed
    earlier.mkdir()
    summary = {"status": "failed", "overrides": ["name=penalties", "scale=quick", "seed=7"]}
    (earlier / "summary.json").write_text(json.dumps(summary))
    aside = root / "seed=0" / ".superseded" / "old"  # an earlier config's run of job seed=0
    aside.mkdir(parents=True)
    (aside / "summary.json").write_text('{"status": "failed"}')

    assert job_statuses(root) == {"seed=0": "completed", "seed=1": NO_SUMMARY}
