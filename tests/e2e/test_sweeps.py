"""The paper experiments as Hydra sweeps: they compose, validate, launch, fail, and resume.

Real sweeps are minutes long; these run the same configs shrunk to a few updates on
scikit-learn's digits (or a synthetic CIFAR-10), through the real CLI: in a subprocess where
the console or the launcher's processes are checked, else in this process (inprocess.py).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import CONF, ISSUE_EXPERIMENTS, assert_quiet, read_summary, run_cli
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from inprocess import run_main
from omegaconf import OmegaConf, open_dict

from reglab.validation import validate

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
SCALES = ("quick", "paper")
SEEDS = {"quick": 2, "paper": 3}


def test_all_issue_experiments_exist():
    assert set(EXPERIMENTS) == ISSUE_EXPERIMENTS


def _grid(cfg) -> list[list[tuple[str, object]]]:
    """The sweep's axes, each a list of (key or group, parsed value), from hydra.sweeper.params."""
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [[(o.key_or_group, v) for v in o.sweep_iterator()] for o in parsed]


def _resolves(cfg) -> None:
    """Every value resolves (the loggers' ${hydra:...} paths exist only in a job)."""
    plain = cfg.copy()
    with open_dict(plain):
        del plain["logger"]
    OmegaConf.to_container(plain, resolve=True, throw_on_missing=True)


def _is_group(key: str) -> bool:
    return (CONF / key).is_dir()


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_every_grid_value_validates(experiment, scale):
    """Every value of every axis, in the composed config, passes reglab's validation.

    Group values (regularizer=l2, model=small_alexnet) are composed by Hydra; key values
    are set on the composed config, which is how Hydra applies them too (composing every
    grid point would take minutes).
    """
    base = [f"experiment={experiment}", f"scale={scale}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        full = compose("config", overrides=base, return_hydra_config=True)
        grid = _grid(full)
        axes = {axis[0][0]: axis for axis in grid}
        assert full.name == experiment and full.scale.name == scale
        assert len(axes["seed"]) == SEEDS[scale]
        assert str(full.hydra.sweep.dir).endswith(f"sweeps/{experiment}/{scale}")
        job = compose("config", overrides=base)
        validate(job)
        for key, values in axes.items():
            for _, value in values:
                if _is_group(key):
                    cfg = compose("config", overrides=[*base, f"{key}={value}"])
                else:
                    cfg = job.copy()
                    OmegaConf.update(cfg, key, value, merge=False)
                validate(cfg)
                _resolves(cfg)
    n_jobs = 1
    for values in axes.values():
        n_jobs *= len(values)
    assert n_jobs >= 2 * SEEDS[scale]


SRIVASTAVA_MNIST = ("dropout_rate_fixed_n", "dropout_rate_fixed_pn", "data_size", "architectures")


def test_quick_scale_shrinks_the_paper_protocol():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        quick = compose("config", ["experiment=dropout_rate_fixed_n", "scale=quick"])
        paper = compose("config", ["experiment=dropout_rate_fixed_n", "scale=paper"])
        assert list(paper.model.hidden) == [2048, 2048, 2048]
        assert list(quick.model.hidden) == [512, 512, 512]
        assert paper.dropout.p_input == quick.dropout.p_input == 1.0
        assert paper.regularizer.c == 2.0 and paper.optimizer.momentum == 0.95
        assert paper.trainer.max_steps == 1_000_000 > quick.trainer.max_steps
        pn = compose(
            "config", ["experiment=dropout_rate_fixed_pn", "scale=paper", "fixed_pn.p=p0.4"]
        )
        assert pn.dropout.p_hidden == 0.4 and list(pn.model.hidden) == [640, 640, 1280]
        cifar = compose("config", ["experiment=randomization", "scale=paper"])
        assert cifar.data.name == "cifar10" and cifar.data.normalize == "per_image"
        assert cifar.data.crop == 28  # Zhang et al. App. A
        assert cifar.optimizer.lr == 0.01 and cifar.scheduler.gamma == 0.95
        for scale in ("quick", "paper"):  # Ioffe & Szegedy §4.1: "a 28x28 binary image"
            bn = compose("config", ["experiment=batchnorm", f"scale={scale}"])
            assert bn.data.binarize and bn.data.normalize == "unit" and bn.data.batch_size == 60
        # Srivastava et al.'s MNIST nets: raw [0, 1] pixels, as the authors' deepnet
        # example feeds them (examples/ff/model_dropout.pbtxt), not conf/data/mnist.yaml's
        for name in SRIVASTAVA_MNIST:
            for scale in ("quick", "paper"):
                cfg = compose("config", [f"experiment={name}", f"scale={scale}"])
                assert cfg.data.normalize == "unit", (name, scale)


@pytest.mark.parametrize(
    "size, updates, ramp",
    [(100, 3000, 300), (5000, 3000, 300), (10000, 5000, 500), (50000, 7500, 750)],
)
def test_data_size_quick_budget_is_50_epochs_within_3000_to_7500_updates(size, updates, ramp):
    """50 epochs per size, not the same count for all; floor and cap in updates."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", ["experiment=data_size", "scale=quick", f"data.train_size={size}"])
        paper = compose(
            "config", ["experiment=data_size", "scale=paper", f"data.train_size={size}"]
        )
    assert cfg.trainer.max_steps == updates and cfg.momentum_ramp.steps == ramp
    assert list(cfg.model.hidden) == [512, 512, 1024]  # half the paper's widths
    assert paper.trainer.max_steps == 1_000_000
    assert list(paper.model.hidden) == [1024, 1024, 2048]


def _hydra_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("launcher", ["slurm", "submitit_local"])
def test_gpu_trainer_asks_the_launcher_for_gpus(launcher):
    gpu = _hydra_cfg(f"launcher={launcher}", "trainer=gpu")
    assert gpu.hydra.launcher.gpus_per_node >= 1
    cpu = _hydra_cfg(f"launcher={launcher}", "trainer=cpu")
    assert cpu.hydra.launcher.gpus_per_node == 0
    two = _hydra_cfg(f"launcher={launcher}", "trainer=gpu", "trainer.devices=2")
    assert two.hydra.launcher.gpus_per_node == 2
    assert cpu.threads == cpu.hydra.launcher.cpus_per_task


def test_launcher_choices():
    slurm = _hydra_cfg("experiment=penalties", "launcher=slurm", "hydra.launcher.partition=gpu")
    launcher = slurm.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.timeout_min > 0 and launcher.mem_gb > 0
    assert launcher.array_parallelism > 0 and launcher.cpus_per_task == slurm.threads
    assert str(launcher.submitit_folder).startswith(str(slurm.hydra.sweep.dir))
    joblib = _hydra_cfg("launcher=joblib")
    assert joblib.hydra.launcher._target_.endswith("JoblibLauncher")
    assert joblib.hydra.launcher.n_jobs * joblib.threads <= 2  # this machine's cores
    local = _hydra_cfg("launcher=local")
    assert local.hydra.launcher._target_.endswith("BasicLauncher")
    assert _hydra_cfg().hydra.launcher._target_.endswith("BasicLauncher")


# -- tiny sweeps through the real CLI ------------------------------------------------------

# penalties' grid replaced by two jobs; digits keeps them to seconds and needs no download.
TINY = [
    "-m",
    "experiment=penalties",
    "data=digits",
    "data.train_size=null",
    "model.hidden=[32]",
    "regularizer=l2",
    "regularizer.lam=0.0001",
    "trainer.max_steps=30",
    "trainer.val_check_interval=10",
    "probe_size=100",
]
GOOD = "optimizer.lr=0.05"  # the other job's lr, 1e6, makes the loss overflow: diverged


def _jobs(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: read_summary(p.parent) for p in sweep.glob("*/summary.json")}


def _failing_sweep(tmp_path: Path, *extra: str):
    sweep = tmp_path / "sweep"
    result = run_cli(
        *TINY, "seed=0", f"{GOOD},1e6", f"hydra.sweep.dir={sweep}", *extra, cwd=tmp_path
    )
    return sweep, result


def _check_one_failed_one_completed(sweep: Path, result) -> tuple[Path, Path]:
    jobs = _jobs(sweep)
    good = next(name for name in jobs if GOOD in name)
    bad = next(name for name in jobs if GOOD not in name)  # optimizer.lr=1e6 (as Hydra spells it)
    assert len(jobs) == 2, result.stderr[-3000:]
    assert_quiet(result)
    assert jobs[good]["status"] == "completed" and jobs[good]["metrics"]["steps"] == 30
    assert jobs[bad]["status"] == "diverged" and "loss" in jobs[bad]["error"]
    # Every job runs; the failed one is named at the end and the sweep exits with status 1.
    assert result.returncode == 1
    assert "1 jobs of the sweep did not complete" in result.stderr
    assert f"job {bad}: diverged" in result.stdout + result.stderr
    # One line per finished job as the sweep goes (reglab.progress), in the order they end.
    lines = [line.split(" - ", 1)[1] for line in result.stdout.splitlines() if "/2 " in line]
    assert len(lines) == 2, result.stdout
    assert {line[:4] for line in lines} == {"1/2 ", "2/2 "}
    assert any(f"completed, test {jobs[good]['metrics']['test_error']:.2f} %" in x for x in lines)
    assert any(x.split(" | ")[0].split(",")[0].endswith("diverged") for x in lines)
    assert all(" | elapsed " in x and ", ETA " in x for x in lines)
    return sweep / good, sweep / bad


@pytest.mark.slow  # > 5 s: not in make test-fast
def test_basic_launcher_failed_job_is_recorded_others_go_on_rerun_skips(tmp_path):
    paths = [f"paths.log_dir={tmp_path / 'elsewhere'}", f"data.root={tmp_path / 'data'}"]
    sweep, result = _failing_sweep(tmp_path, "launcher=local", *paths)
    good, bad = _check_one_failed_one_completed(sweep, result)
    # A job's directory is named from its overrides, less experiment/scale/launcher/paths...
    expected = sorted([*TINY[2:], "seed=0", GOOD])
    assert good.name == ",".join(expected)
    before = (good / "summary.json").stat().st_mtime_ns, (good / "summary.json").read_bytes()

    again = run_main(
        *TINY, "seed=0", f"{GOOD},1e6", f"hydra.sweep.dir={sweep}", "launcher=local", cwd=tmp_path
    )
    after = (good / "summary.json").stat().st_mtime_ns, (good / "summary.json").read_bytes()
    assert after == before  # the completed job is untouched...
    log = (good / "train.log").read_text()
    assert "already completed, skipping" in log and log.count("training from ") == 1
    # ...and the failed one is tried again (and fails again).
    assert read_summary(bad)["status"] == "diverged" and again.returncode != 0
    # A later sweep into the same folder is judged by its own jobs only: the diverged job
    # of the earlier sweep is neither counted nor named, and the sweep exits 0.
    good_only = run_main(
        *TINY, "seed=0", GOOD, f"hydra.sweep.dir={sweep}", "launcher=local", cwd=tmp_path
    )
    assert good_only.returncode == 0, good_only.stderr[-3000:]
    assert "1 completed;" in good_only.stdout + good_only.stderr
    assert "diverged" not in good_only.stdout + good_only.stderr
    # The report agrees: the job first run with other paths is this sweep's one job.
    from reglab.report.sweeps import read_sweep

    runs = read_sweep(sweep).runs
    assert list(runs["status"]) == ["completed"] and Path(runs["path"][0]) == good


@pytest.mark.slow  # > 5 s: not in make test-fast
def test_joblib_failed_job_recorded_and_one_wandb_run_per_job(tmp_path):
    # n_jobs=1: one worker process runs both jobs in turn, as joblib reuses its workers.
    sweep, result = _failing_sweep(
        tmp_path, "launcher=joblib", "launcher.n_jobs=1", "logger=[csv,wandb]"
    )
    good, bad = _check_one_failed_one_completed(sweep, result)
    run_ids = set()
    for job in (good, bad):
        runs = list((job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, runs
        run_ids.add(runs[0].name.rsplit("-", 1)[-1])
    assert len(run_ids) == 2
    wandb_cfg = read_summary(good)["config"]["logger"]["wandb"]
    assert wandb_cfg["group"] == "penalties/quick"  # the sweep's runs share a group


@pytest.mark.slow  # > 5 s: not in make test-fast
def test_submitit_local_sweep_prints_its_progress_lines(tmp_path):
    """submitit's local executor (the SLURM code path without a cluster): each job in its
    own process; the launching process prints one k/N line per finished job."""
    sweep, result = _failing_sweep(tmp_path, "launcher=submitit_local")
    _check_one_failed_one_completed(sweep, result)


# -- the CIFAR-10 path of the paper-scale randomization experiment --------------------------


def _fake_cifar10(root: Path, per_batch: int = 60, test: int = 40) -> None:
    """torchvision's CIFAR-10 layout with random images: 5 train batches, test, meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n: int) -> dict:
        return {
            "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            "labels": rng.integers(0, 10, n).tolist(),
        }

    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        with (folder / name).open("wb") as f:
            pickle.dump(batch(n), f)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": [f"class{k}" for k in range(10)]}, f)


def test_randomization_paper_scale_runs_on_cifar10_layout(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    root = tmp_path / "cifar"
    _fake_cifar10(root)
    # synthetic files: torchvision checks the real files' md5
    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: Path(fpath).is_file())
    monkeypatch.setenv("REGLAB_DATA_DIR", str(root))
    sweep = tmp_path / "sweep"
    result = run_main(
        "-m",
        "experiment=randomization",
        "scale=paper",
        "model=small_alexnet",
        "model.channels=[4,8]",
        "model.fc=[16]",
        "corruption=random_labels",
        "seed=0",
        "trainer.max_epochs=2",
        "probe_size=20",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (summary,) = _jobs(sweep).values()
    assert summary["status"] == "completed"
    cfg = summary["config"]
    assert cfg["data"]["name"] == "cifar10" and cfg["data"]["root"] == str(root)
    assert cfg["data"]["normalize"] == "per_image" and cfg["scheduler"]["gamma"] == 0.95
    assert summary["metrics"]["steps"] == 6  # 300 images, batch 100, 2 epochs
    assert summary["metrics"]["label_noise_fraction"] > 0.5  # random labels
    assert "train_eval/error" in summary["history"][-1]
