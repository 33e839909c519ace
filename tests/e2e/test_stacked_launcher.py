"""reglab's Hydra launcher plugin for stacked training (planning: tests/unit/test_stacking.py).

The engine's ``reglab.run.run_stack`` is replaced by :func:`fake_run_stack`, which writes
each member's summary.json; the launcher around it is real: Hydra composes the jobs,
the plugin plans, writes the job folders and runs the stacks here, in spawned worker
processes, or as submitit jobs (submitit's local executor standing in for SLURM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobStatus
from inprocess import run_main
from omegaconf import OmegaConf

import reglab.run
from hydra_plugins.reglab_stacked_launcher import execution, slurm_launcher, stacked_launcher
from reglab import train
from reglab.progress import SweepWatcher
from reglab.summary import write_json_atomic
from reglab.sweep import SweepReport

TESTS = Path(__file__).resolve().parent
CALLS: list[list[str]] = []  # the members of each run_stack call (in this process)

# -- the fake engine (module level: worker processes import it from here) ------------------


@dataclass
class FakeJob:
    cfg: Any
    out_dir: Path
    overrides: list[str]
    choices: dict[str, str]


class FakeStackOutOfMemory(MemoryError):
    pass


def fake_run_stack(jobs: list[FakeJob]) -> list[dict]:
    """Writes each member's summary; runs out of memory above REGLAB_FAKE_MAX members,
    crashes on a member with REGLAB_FAKE_CRASH in its folder name; with
    REGLAB_FAKE_BARRIER=<folder>:<n>, waits until n processes have a stack (the limit, 10
    min, only bounds a launcher that never starts them: spawned workers import torch, which
    takes long on a loaded machine, and a worker that went on alone could take its peer's
    stack)."""
    if barrier := os.environ.get("REGLAB_FAKE_BARRIER"):
        folder, n = barrier.rsplit(":", 1)
        (Path(folder) / str(os.getpid())).touch()
        deadline = time.monotonic() + 600
        while len(list(Path(folder).iterdir())) < int(n):
            if time.monotonic() > deadline:
                raise RuntimeError(f"barrier: {n} processes never had a stack at once")
            time.sleep(0.05)
    crash = os.environ.get("REGLAB_FAKE_CRASH")
    if crash and any(crash in job.out_dir.name for job in jobs):
        raise RuntimeError("the engine broke")
    CALLS.append([job.out_dir.name for job in jobs])
    if len(jobs) > int(os.environ.get("REGLAB_FAKE_MAX", "1000")):
        raise FakeStackOutOfMemory(f"{len(jobs)} members do not fit")
    summaries = []
    for job in jobs:
        summary = {
            "status": "completed",
            "metrics": {"test_error": 10.0 + job.cfg.seed + job.cfg.regularizer.lam},
            "overrides": list(job.overrides),
            "choices": dict(job.choices),
            "config": OmegaConf.to_container(job.cfg, resolve=True),
            "stack": {"size": len(jobs), "pid": os.getpid()},
        }
        write_json_atomic(job.out_dir / "summary.json", summary)
        summaries.append(summary)
    return summaries


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


# -- the plugin ----------------------------------------------------------------------------


def test_plugin_is_discovered_and_imports_no_torch():
    code = (
        "import sys\n"
        "from hydra.core.plugins import Plugins\n"
        "from hydra.plugins.launcher import Launcher\n"
        "names = {f'{c.__module__}.{c.__name__}' for c in Plugins.instance().discover(Launcher)}\n"
        "pkg = 'hydra_plugins.reglab_stacked_launcher'\n"
        "expected = {pkg + '.stacked_launcher.StackedLauncher',\n"
        "            pkg + '.slurm_launcher.StackedSlurmLauncher'}\n"
        "assert expected <= names, names\n"
        "heavy = {'torch', 'pytorch_lightning', 'lightning', 'pandas'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_launcher_configs():
    cfg = _compose("launcher=stacked", "launcher.max_members=8", "launcher.n_procs=2")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("stacked_launcher.StackedLauncher")
    assert (launcher.max_members, launcher.n_procs, launcher.dry_run) == (8, 2, False)
    assert launcher.memory_gb is None and cfg.threads is None
    dry = _compose("launcher=stacked", "hydra.launcher.dry_run=true")
    assert dry.hydra.launcher.dry_run is True
    slurm = _compose("launcher=stacked_slurm", "trainer=gpu", "hydra.launcher.partition=p")
    assert slurm.hydra.launcher._target_.endswith("StackedSlurmLauncher")
    assert slurm.hydra.launcher.partition == "p" and slurm.hydra.launcher.gpus_per_node == 1
    assert slurm.hydra.launcher.max_num_timeout > 0 and slurm.threads == 2
    excluded = set(cfg.hydra.job.config.override_dirname.exclude_keys)
    assert {f"launcher.{k}" for k in ("max_members", "n_procs", "dry_run", "memory_gb")} <= excluded


def test_default_memory_budget(tmp_path, monkeypatch):
    """GPU: 80 % of the visible GPU's free memory (nvidia-smi), shared by the processes;
    CPU: 25 % of the RAM; SLURM: none on a GPU node, half of mem_gb on a CPU node."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '0, 81000'\necho '1, 1000'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpu, cpu = [{"trainer": {"accelerator": "gpu"}}], [{"trainer": {"accelerator": "cpu"}}]
    assert execution.default_budget(gpu, n_procs=2) == (int(0.8 * 1000 * 2**20) // 2, "gpu")
    assert execution.default_budget(cpu, n_procs=1) == (int(0.25 * execution.ram_bytes()), "cpu")
    slurm = slurm_launcher.StackedSlurmLauncher(mem_gb=8)
    assert slurm.budget(gpu) == (None, "gpu") and slurm.budget(cpu) == (4 * 2**30, "cpu")
    assert stacked_launcher.StackedLauncher(memory_gb=1.5).budget(gpu) == (3 * 2**29, "gpu")


def test_checkpoint_resubmits_the_same_stack():
    task = execution.StackTask(fake_run_stack, threads=1)
    delayed = task.checkpoint(["job a", "job b"])
    assert delayed.function is task and delayed.args == (["job a", "job b"],)


# -- the real CLI (in this process), dry run ------------------------------------------------


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_main(
        "-m",
        "experiment=batchnorm",
        "scale=quick",
        "launcher=stacked",
        "launcher.dry_run=true",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "dry run: 4 jobs in 2 stacks (max_members=64" in result.stdout, result.stdout
    stack_lines = [line for line in lines if line.startswith("stack ")]
    assert len(stack_lines) == 2 and all("2 members, ~" in line for line in stack_lines)
    assert "model.batchnorm=false" in stack_lines[0].lower() and "seed=0 · seed=1" in stack_lines[0]
    assert [p.name for p in sweep.iterdir()] == ["multirun.yaml"]  # no job folders


# -- the launcher in this process, the engine faked ----------------------------------------

SMALL = [
    "-m",
    "experiment=penalties",
    "data=digits",
    "data.train_size=null",
    "model.hidden=[32]",
    "regularizer=l2",
    "probe_size=100",
]
ONE_PROC = "launcher.n_procs=1"  # stacks in this process, where the fake engine counts them


@pytest.fixture
def engine(monkeypatch):
    """The fake engine in reglab.run; yields the JobReturns of each launch."""
    import logging

    from hydra.core.plugins import Plugins

    Plugins.instance()  # the plugin scan re-executes the plugin's modules: before patching
    for name, fake in (
        ("Job", FakeJob),
        ("run_stack", fake_run_stack),
        ("StackOutOfMemory", FakeStackOutOfMemory),
    ):
        monkeypatch.setattr(reglab.run, name, fake, raising=False)
    returns: list = []
    launcher_cls = stacked_launcher.StackedLauncher
    original = launcher_cls.launch

    def launch(self, *args, **kwargs):
        returns.append(original(self, *args, **kwargs))
        return returns[-1]

    monkeypatch.setattr(launcher_cls, "launch", launch)
    monkeypatch.setattr(SweepReport, "incomplete", {})
    CALLS.clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield returns
    root.handlers[:], root.level = handlers, level  # Hydra's handlers hold pytest's streams
    if SweepWatcher.current is not None:  # a sweep that raised never reached its end callback
        SweepWatcher.current.stop_event.set()
        SweepWatcher.current = None
    GlobalHydra.instance().clear()


def _main(monkeypatch, *args: str) -> int:
    """``reglab-train *args`` in this process; its exit status."""
    monkeypatch.setattr(sys, "argv", ["reglab-train", *args])
    try:
        train.main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def _summaries(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}


def test_stacked_sweep_writes_every_job_folder(tmp_path, monkeypatch, engine, capsys):
    sweep = tmp_path / "sweep"
    args = [*SMALL, "regularizer.lam=0.0001,0.001", "seed=0,1", "optimizer=sgd,adam"]
    rc = _main(
        monkeypatch,
        *args,
        "launcher=stacked",
        "launcher.max_members=4",
        "launcher.n_procs=1",
        f"hydra.sweep.dir={sweep}",
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "8 jobs in 2 stacks (max_members=4" in out and "8 completed" in out
    # Two stacks of four, one per optimizer (a non-stackable choice).
    assert sorted(map(len, CALLS)) == [4, 4]
    for call in CALLS:
        assert len({name.split("optimizer=")[1].split(",")[0] for name in call}) == 1
    (returns,) = engine
    assert len(returns) == 8 and all(r.status == JobStatus.COMPLETED for r in returns)
    summaries = _summaries(sweep)
    assert len(summaries) == 8
    for ret in returns:
        seed = int(next(o for o in ret.overrides if o.startswith("seed=")).split("=")[1])
        lam = float(
            next(o for o in ret.overrides if o.startswith("regularizer.lam=")).split("=")[1]
        )
        assert ret.return_value == pytest.approx(10 + seed + lam)
        # The folder is named from the overrides, less the excluded keys (launcher.*).
        name = ",".join(
            sorted(o for o in ret.overrides if not o.startswith(("experiment", "launcher")))
        )
        job = sweep / name
        assert job.is_dir(), sorted(p.name for p in sweep.iterdir())
        assert ret.hydra_cfg.hydra.runtime.output_dir == str(job)
        assert yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) == ret.overrides
        assert "launcher.max_members=4" in ret.overrides
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        assert config["seed"] == seed and "hydra" not in config
        hydra_yaml = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())
        assert hydra_yaml["hydra"]["runtime"]["output_dir"] == str(job)
        summary = summaries[name]
        assert summary["stack"]["size"] == 4 and summary["stack"]["pid"] == os.getpid()
        assert summary["overrides"] == ret.overrides
        assert summary["choices"]["optimizer"] in ("sgd", "adam")
        assert "hydra/launcher" not in summary["choices"]
        assert summary["config"]["logger"]["csv"]["save_dir"] == str(job)  # resolved per job


def test_out_of_memory_halves_the_stack_and_bad_configs_are_recorded(
    tmp_path, monkeypatch, engine, capsys
):
    monkeypatch.setenv("REGLAB_FAKE_MAX", "1")
    sweep = tmp_path / "sweep"
    args = [*SMALL, "regularizer.lam=0.0001,0.001,-1", "seed=0,1", "launcher=stacked", ONE_PROC]
    rc = _main(monkeypatch, *args, f"hydra.sweep.dir={sweep}")
    out = capsys.readouterr().out
    assert rc == 1  # the two jobs with λ = -1 did not complete
    assert [len(c) for c in CALLS] == [4, 2, 1, 1, 2, 1, 1]
    summaries = _summaries(sweep)
    bad = {k: s for k, s in summaries.items() if "regularizer.lam=-1" in k}
    assert len(bad) == 2 and all(s["status"] == "failed" for s in bad.values())
    assert all("regularizer.lam=-1" in s["error"] for s in bad.values())
    good = {k: s for k, s in summaries.items() if k not in bad}
    assert len(good) == 4 and all(s["status"] == "completed" for s in good.values())
    assert "4 completed, 2 failed" in out
    (returns,) = engine
    assert all(r.status == JobStatus.COMPLETED for r in returns)
    assert sum(r.return_value is None for r in returns) == 2


def test_a_member_that_never_fits_fails_alone(tmp_path, monkeypatch, engine):
    monkeypatch.setenv("REGLAB_FAKE_MAX", "0")
    sweep = tmp_path / "sweep"
    args = [*SMALL, "regularizer.lam=0.0001", "seed=0,1", "launcher=stacked", ONE_PROC]
    rc = _main(monkeypatch, *args, f"hydra.sweep.dir={sweep}")
    assert rc == 1
    summaries = _summaries(sweep)
    assert len(summaries) == 2
    assert all(
        s["status"] == "failed" and "out of memory" in s["error"] for s in summaries.values()
    )


def test_a_crashed_stack_fails_its_jobs_only(tmp_path, monkeypatch, engine):
    monkeypatch.setenv("REGLAB_FAKE_CRASH", "optimizer=adam")
    sweep = tmp_path / "sweep"
    args = [*SMALL, "regularizer.lam=0.0001", "seed=0,1", "optimizer=adam,sgd", "launcher=stacked"]
    args.append(ONE_PROC)
    rc = _main(monkeypatch, *args, f"hydra.sweep.dir={sweep}")
    assert rc == 1  # Hydra reports the failed jobs' error once every stack has run
    summaries = _summaries(sweep)
    assert len(summaries) == 4
    for name, summary in summaries.items():
        if "optimizer=adam" in name:
            assert summary["status"] == "failed" and "the engine broke" in summary["error"]
        else:
            assert summary["status"] == "completed"
    (returns,) = engine
    assert sorted(r.status.name for r in returns) == ["COMPLETED"] * 2 + ["FAILED"] * 2


@pytest.mark.slow  # > 5 s: not in make test-fast
def test_stacks_in_worker_processes(tmp_path, monkeypatch, engine, capsys):
    sweep = tmp_path / "sweep"
    # each stack waits for the other: one worker doing both (n_procs ignored) never gets
    # there, and a fast first worker cannot take the second stack before its peer starts
    (tmp_path / "barrier").mkdir()
    monkeypatch.setenv("REGLAB_FAKE_BARRIER", f"{tmp_path / 'barrier'}:2")
    args = [
        *SMALL,
        "regularizer.lam=0.0001",
        "seed=0,1",
        "optimizer=adam,sgd",
        "launcher=stacked",
        "launcher.n_procs=2",
    ]
    rc = _main(monkeypatch, *args, "launcher.threads_per_proc=1", f"hydra.sweep.dir={sweep}")
    assert rc == 0
    summaries = _summaries(sweep)
    assert len(summaries) == 4 and all(s["status"] == "completed" for s in summaries.values())
    pids = {s["stack"]["pid"] for s in summaries.values()}
    assert len(pids) == 2 and os.getpid() not in pids  # two stacks, two spawned workers
    _assert_job_lines(capsys.readouterr().out, 4)
    (returns,) = engine
    assert all(r.status == JobStatus.COMPLETED and r.return_value > 0 for r in returns)


def _assert_job_lines(out: str, n: int) -> None:
    """One line per finished job (reglab.progress), whatever process trained it."""
    lines = [line for line in out.splitlines() if f"/{n} completed, test " in line]
    assert sorted(line.split(" - ", 1)[1][:4] for line in lines) == [
        f"{k}/{n} " for k in range(1, n + 1)
    ]


@pytest.mark.slow  # > 5 s: not in make test-fast
def test_stacks_as_submitit_jobs(tmp_path, monkeypatch, engine, capsys):
    """The SLURM launcher's path with submitit's local executor in SLURM's place."""
    monkeypatch.setattr(slurm_launcher.StackedSlurmLauncher, "_EXECUTOR", "local")
    monkeypatch.setattr(slurm_launcher.StackedSlurmLauncher, "poll_s", 0.2)
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
    )
    sweep = tmp_path / "sweep"
    args = [
        *SMALL,
        "regularizer.lam=0.0001",
        "seed=0,1",
        "optimizer=adam,sgd",
        "launcher=stacked_slurm",
    ]
    rc = _main(
        monkeypatch,
        *args,
        "hydra.launcher.timeout_min=5",
        "launcher.cpus_per_task=1",
        f"hydra.sweep.dir={sweep}",
    )
    assert rc == 0
    summaries = _summaries(sweep)
    assert len(summaries) == 4 and all(s["status"] == "completed" for s in summaries.values())
    assert os.getpid() not in {s["stack"]["pid"] for s in summaries.values()}
    assert len(list((sweep / ".submitit").glob("*/*_log.out"))) == 2  # one job per stack
    _assert_job_lines(capsys.readouterr().out, 4)  # from the job folders, while it waits
