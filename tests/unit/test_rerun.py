"""reglab.rerun: which config changes make an earlier run stale, and setting it aside."""

from __future__ import annotations

import json
from pathlib import Path

from reglab.rerun import SUPERSEDED, changed_settings, set_aside
from reglab.sweep import job_statuses

CONFIG = {
    "seed": 0,
    "threads": 1,
    "model": {"hidden": [256, 256, 512]},
    "trainer": {"max_steps": 25000, "accelerator": "cpu"},
    "paths": {"log_dir": "logs"},
    "data": {"root": "data", "train_size": 5000},
}


def _with(**changes) -> dict:
    config = json.loads(json.dumps(CONFIG))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = config
        for key in parents:
            node = node[key]
        node[leaf] = value
    return config


def test_a_changed_result_setting_is_named_with_both_values():
    new = _with(model__hidden=[512, 512, 1024], trainer__max_steps=7500)
    assert changed_settings(CONFIG, new) == [
        "model.hidden: [256, 256, 512] → [512, 512, 1024]",
        "trainer.max_steps: 25000 → 7500",
    ]


def test_where_and_how_a_job_runs_is_not_a_change():
    new = _with(threads=4, trainer__accelerator="gpu", paths__log_dir="/elsewhere")
    new["data"]["root"] = "/mnt/mnist"
    assert changed_settings(CONFIG, new) == []
    assert changed_settings(None, CONFIG) == []  # a summary without a config: unknown


def test_checkpoint_settings_through_the_members_callback_are_not_a_change():
    """conf/callbacks/default.yaml passes checkpoint.* to MemberRuns: a rerun with another
    checkpoint cadence resumes (tests/e2e/test_resume.py's kill -9 case)."""
    members = {"stop_when_fit": False, "every_n_steps": 25, "keep": False, "every_minutes": 5}
    old = _with() | {"callbacks": {"members": members}}
    new = _with() | {"callbacks": {"members": members | {"every_n_steps": None, "keep": True}}}
    assert changed_settings(old, new) == []
    fit = _with() | {"callbacks": {"members": members | {"stop_when_fit": True}}}
    assert changed_settings(old, fit) == ["callbacks.members.stop_when_fit: False → True"]


def test_a_run_recorded_before_the_callbacks_group_ran_with_its_default():
    """A summary of an earlier release has no ``callbacks``: it ran as the default entry
    (tests/e2e/test_rerun_guard.py); a callback of the user's own is a change."""
    from conftest import compose_config
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(compose_config("data=digits"), resolve=False)
    cfg["logger"], cfg["paths"] = {}, {}
    new = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    old = {k: v for k, v in new.items() if k != "callbacks"}
    assert changed_settings(old, new) == []
    new["callbacks"]["lr"] = {"_target_": "pytorch_lightning.callbacks.LearningRateMonitor"}
    assert changed_settings(old, new) == [
        "callbacks.lr._target_: (absent) → pytorch_lightning.callbacks.LearningRateMonitor"
    ]


def test_an_added_or_removed_key_is_a_change_unless_it_is_null():
    new = _with()
    new["momentum_ramp"] = {"steps": 300}
    new["data"]["crop"] = None  # a newer option, off: the same computation
    del new["data"]["train_size"]
    assert changed_settings(CONFIG, new) == [
        "data.train_size: 5000 → (absent)",
        "momentum_ramp.steps: (absent) → 300",
    ]


def test_set_aside_keeps_the_new_runs_hydra_files_and_hides_the_old_run(tmp_path: Path):
    job = tmp_path / "sweep" / "data.train_size=5000,seed=0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("new")
    (job / "train.log").write_text("new run's log")
    (job / "csv").mkdir()
    (job / "csv" / "metrics.csv").write_text("old")
    (job / "summary.json").write_text(json.dumps({"status": "completed"}))
    first = set_aside(job)
    assert first.parent == job / SUPERSEDED
    assert sorted(p.name for p in job.iterdir()) == [".hydra", SUPERSEDED, "train.log"]
    assert (first / "csv" / "metrics.csv").read_text() == "old"
    assert json.loads((first / "summary.json").read_text())["status"] == "completed"
    (job / "summary.json").write_text(json.dumps({"status": "failed"}))
    second = set_aside(job)  # twice in one second: a second folder, nothing overwritten
    assert second != first and (second / "summary.json").exists()
    # The sweep's report counts jobs, not the runs kept aside inside them.
    (job / "summary.json").write_text(json.dumps({"status": "completed"}))
    assert job_statuses(tmp_path / "sweep") == {job.name: "completed"}
