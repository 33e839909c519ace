"""End to end: the real CLI on the real MNIST. The first run is a subprocess, as a user
runs it, and its console is checked; the others run ``reglab-train`` in this process
(inprocess.py): same entry point, same outputs, without a new interpreter's imports."""

from __future__ import annotations

import csv

import pytest
from conftest import assert_quiet, read_summary, run_cli
from inprocess import run_main, run_main_ok

pytestmark = pytest.mark.slow

# One torch thread: the suite's runs share two cores (pytest workers), where torch's
# OpenMP threads spin on busy cores (a run took 8x as long with threads=2).
FAST = ["trainer.max_steps=300", "data.batch_size=128", "optimizer.lr=0.1", "threads=1"]


def test_mlp_on_mnist_learns_and_writes_its_summary(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    result = run_cli(*FAST, "dropout=standard", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_quiet(result)
    summary = read_summary(run_dir)
    assert summary["status"] == "completed"
    metrics = summary["metrics"]
    assert metrics["test_error"] < 10.0  # chance is 90 %
    assert {"train_error", "val_error", "test_error", "test_loss"} <= metrics.keys()
    assert metrics["steps"] == 300
    assert summary["seed"] == 0 and summary["config"]["dropout"]["p_hidden"] == 0.5
    assert summary["versions"]["torch"] and summary["wall_time_s"] > 0
    assert "git_commit" in summary
    last = summary["history"][-1]
    assert last["step"] == 300 and "act/act1/zero_fraction" in last
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    assert any(row.get("test/error") for row in rows)


def test_cnn_run(tmp_path, data_dir):
    summary = run_main_ok(
        "model=cnn",
        "model.channels=[8,16]",
        "model.fc=[32]",
        "dropout=standard",
        "regularizer=l1_proximal",
        "trainer.max_steps=60",
        "data.train_size=3000",
        "data.val_size=1000",
        "threads=1",
        run_dir=tmp_path / "cnn",
        cwd=tmp_path,
    )
    assert summary["status"] == "completed"
    assert summary["metrics"]["test_error"] < 60.0
    assert summary["metrics"]["zero_weight_fraction"] > 0.0


def _metrics(tmp_path, name, *overrides):
    summary = run_main_ok(
        "trainer.max_steps=40",
        "data.train_size=2000",
        "dropout=standard",
        "trainer.deterministic=true",
        "threads=1",
        "probe_size=0",
        *overrides,
        run_dir=tmp_path / name,
        cwd=tmp_path,
    )
    return summary["metrics"], summary["history"]


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path, data_dir):
    first = _metrics(tmp_path, "a", "seed=0")
    again = _metrics(tmp_path, "b", "seed=0")
    other = _metrics(tmp_path, "c", "seed=1")
    assert first == again
    assert first[0]["test_loss"] != other[0]["test_loss"]


def test_wandb_offline_run(tmp_path, data_dir):
    run_dir = tmp_path / "wb"
    result = run_main(
        "logger=[csv,wandb]",
        "trainer.max_steps=20",
        "data.train_size=1000",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))


def test_two_job_multirun_gives_one_wandb_run_per_job(tmp_path, data_dir):
    sweep = tmp_path / "sweep"
    result = run_main(
        "-m",
        "seed=0,1",
        "logger=[csv,wandb]",
        "trainer.max_steps=20",
        "data.train_size=1000",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    assert [j.name for j in jobs] == [
        f"data.train_size=1000,seed={seed},trainer.max_steps=20" for seed in (0, 1)
    ]
    assert all(read_summary(j)["status"] == "completed" for j in jobs)
    run_ids = {r.name.rsplit("-", 1)[-1] for j in jobs for r in (j / "wandb").glob("offline-run-*")}
    assert len(run_ids) == 2


BAD = [
    ("dropout.p_hidden=1.5", "dropout.p_hidden=1.5: must be a retention probability in (0, 1]"),
    ("dropout.p_input=0", "dropout.p_input=0: must be a retention probability in (0, 1]"),
    ("regularizer=l2 regularizer.lam=-1", "regularizer.lam=-1: must be a number >= 0"),
    ("regularizer=max_norm regularizer.c=0", "regularizer.c=0: must be a number > 0"),
    ("model.hidden=[]", "model.hidden=[]: must be a non-empty list of positive integers"),
    ("data.name=svhn", "data.name='svhn': must be one of mnist"),
    ("corruption=partial_labels corruption.q=1.2", "corruption.q=1.2: must be a probability"),
    ("+model.depth=3", "model.depth=3: unknown key; allowed keys are hidden, activation"),
    ("data.batch_size=0", "data.batch_size=0: must be an integer > 0"),
    ("data.train_size=0", "data.train_size=0: must be null or an integer > 0"),
    ("data.crop=0", "data.crop=0: must be null or an integer > 0"),
    ("data.binarize=maybe", "data.binarize='maybe': must be true or false"),
    ("vmap_solo=1", "vmap_solo=1: must be auto, true or false"),
    ("data.crop=29", "data.crop=29: must be <= 28 (image size)"),
    ("experiment=data_size data.train_size=null", "reglab.updates_for needs a training-set size"),
    ("model=cnn model.kernel_size=4", "model.kernel_size=4: must be an odd integer > 0"),
    ("data.root=/nonexistent data.download=false", "data.root=/nonexistent: MNIST not found"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_before_training(tmp_path, overrides, message):
    run_dir = tmp_path / "bad"
    result = run_main(*overrides.split(), f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("reglab: error: ") and message in lines[0]
    assert not (run_dir / "summary.json").exists()
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.parametrize("overrides", ["dropout.p_hidden=1.5", "data.crop=0 seed=3"])
def test_bad_config_leaves_no_run_directory(tmp_path, overrides):
    """Config errors stop before Hydra creates the run directory (so do crop and subset
    sizes and missing files; only a corrupted file is found later, when the data is read,
    and leaves Hydra's .hydra/ and an empty log)."""
    run_dir = tmp_path / "bad"
    result = run_main(*overrides.split(), f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 2 and "reglab: error: " in result.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("trainer.devices=2", "trainer.devices=2: must be 1 or auto (a run trains on one"),
        ("+trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches=2: must be 1"),
        ("trainer.precision=16-mixed", "trainer.precision=16-mixed: must be 32-true or bf16"),
    ],
)
def test_trainer_settings_the_loop_does_not_honour_are_refused(tmp_path, overrides, message):
    """The trainer group is Lightning's Trainer; a key that cannot work when one Trainer
    fits a stack is refused (gradient_clip_val works now: per member; every refusal:
    tests/e2e/test_refusal.py)."""
    result = run_main(overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
