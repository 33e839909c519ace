"""Shared fixtures: the real MNIST from ../shared/data (or REGLAB_DATA_DIR), the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pytest

from reglab.resolvers import compose as reglab_compose
from reglab.resolvers import register

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# The papers' experiments the project reproduces, one sweep each (conf/experiment/).
ISSUE_EXPERIMENTS = {
    "dropout_rate_fixed_n",
    "dropout_rate_fixed_pn",
    "data_size",
    "architectures",
    "randomization",
    "label_corruption",
    "batchnorm",
    "penalties",
    "regularizer_comparison",
}
# Absolute, because the CLI tests run in temporary folders: a relative REGLAB_DATA_DIR
# (the README's ../shared/data) would point somewhere else there.
DATA_DIR = Path(os.environ.get("REGLAB_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
# Set for the whole session (module-scoped fixtures and subprocesses see them too).
os.environ["REGLAB_DATA_DIR"] = str(DATA_DIR)
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
# One torch thread per process where a config leaves `threads` unset (this process, the CLI
# subprocesses, launcher workers): the suite's processes share the cores (pytest workers,
# subprocesses), and torch's OpenMP threads spin on busy cores (runs took 4-8x as long).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The tests compose configs with Hydra as reglab-train does, after registering reglab's
# OmegaConf resolvers (``import reglab`` registers nothing).
register()


# --------------------------------------------------------------------------- system packages
# SLURM (slurmctld slurmd slurm-client munge) and Chromium, which scripts/system_deps.sh
# installs. A test that needs one checks for it (never guesses from the user or the OS);
# where it is absent the test is skipped with the command that installs it, except in CI
# (.ci/run: REGLAB_CI=1; or the common CI=true), where it FAILS: CI skips nothing for want
# of a system package. REGLAB_SKIP_SLURM=1 / REGLAB_SKIP_BROWSER=1 switch a group off
# explicitly, outside CI only.

SYSTEM_DEPS_SCRIPT = ROOT / "scripts" / "system_deps.sh"


def in_ci() -> bool:
    """Whether this run is CI: REGLAB_CI=1 (.ci/run) or CI=true (GitHub, GitLab, ...)."""
    return os.environ.get("REGLAB_CI") == "1" or os.environ.get("CI", "").lower() in {"true", "1"}


def system_deps_command() -> str:
    """The one command that installs the system packages the tests use."""
    return "make system-deps" if os.geteuid() == 0 else "sudo make system-deps"


def missing_system_packages(group: str) -> list[str]:
    """The packages of ``group`` (slurm, browser) that scripts/system_deps.sh finds missing."""
    res = subprocess.run(
        ["bash", str(SYSTEM_DEPS_SCRIPT), "--check", group],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode == 0:
        return []
    line = next((ln for ln in res.stdout.splitlines() if "missing: " in ln), "")
    return line.split("missing: ", 1)[1].split() if line else [f"({group}: {res.stderr.strip()})"]


def skipped_on_request(skip_var: str) -> None:
    """Skip where ``skip_var``=1 asks for it, outside CI (in CI the variable is ignored)."""
    if os.environ.get(skip_var) == "1" and not in_ci():
        pytest.skip(f"{skip_var}=1: these tests are switched off")


def system_package_missing(what: str, command: str | None = None) -> NoReturn:
    """``what`` was checked for and is absent: skip, naming the command that enables the
    test, or FAIL in CI."""
    command = command or system_deps_command()
    if in_ci():
        pytest.fail(f"{what} is missing in CI (REGLAB_CI/CI is set): `{command}` installs it")
    pytest.skip(f"{what} is missing: `{command}` enables these tests")


#: Where Debian's ``chromium`` package puts the browser, if it is not on PATH.
CHROMIUM_PATHS = ("/usr/bin/chromium",)


def require_chromium() -> str:
    """Headless Chromium's path (REGLAB_CHROMIUM, else `chromium` on PATH or where Debian
    installs it); absent: :func:`system_package_missing`."""
    skipped_on_request("REGLAB_SKIP_BROWSER")
    candidates = [os.environ.get("REGLAB_CHROMIUM"), shutil.which("chromium"), *CHROMIUM_PATHS]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    return found or system_package_missing("headless Chromium (Debian package chromium)")


# --------------------------------------------------------------------------- tiers, xdist

#: pytest-xdist groups: the tests of the files whose names start with a group's prefix run
#: in one worker, one after another. ``slurm``: the one local cluster (its state folder, its
#: daemons), which the session fixture of whichever worker started it also stops.
XDIST_GROUPS = {"slurm": "test_slurm_"}


def _xdist_group(nodeid: str) -> str | None:
    name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return next((g for g, prefix in XDIST_GROUPS.items() if name.startswith(prefix)), None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``-n N`` (``--dist load``, the default, or ``loadgroup``): xdist's loadgroup
    scheduling, the groups of :data:`XDIST_GROUPS` each in one worker. (By file name: the
    controller sees node ids only, and pytest-xdist's own ``xdist_group`` mark does not
    reach pytest 9's node ids.)"""
    if config.getvalue("dist") not in {"load", "loadgroup"}:
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Grouped(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _xdist_group(nodeid) or super()._split_scope(nodeid)

    return Grouped(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``unit`` / ``e2e`` from the test's folder (``-m unit``); a test that needs the SLURM
    cluster must live in a ``test_slurm_*.py`` file (its xdist group)."""
    for item in items:
        tier = item.path.parent.name
        if tier in {"unit", "e2e"}:
            item.add_marker(tier)
        slurm = item.get_closest_marker("slurm") or "slurm_cluster" in getattr(
            item, "fixturenames", ()
        )
        if slurm and _xdist_group(item.nodeid) != "slurm":
            raise pytest.UsageError(
                f"{item.nodeid}: SLURM tests go in tests/e2e/test_slurm_*.py (one xdist group)"
            )


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The MNIST root; a missing data set fails the tests that need it, never skips them."""
    if not (DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.fail(f"MNIST not found under {DATA_DIR}; set REGLAB_DATA_DIR to its root")
    return DATA_DIR


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REGLAB_LOG_DIR", str(tmp_path / "logs"))


def compose_config(*overrides: str):
    """The config ``reglab-train`` would run with these overrides (no Hydra runtime)."""
    return reglab_compose(overrides, config_dir=str(CONF))


def run_cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as a user runs it."""
    env = os.environ | {"PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "reglab.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: What a quiet console never shows (issue 13): library banners and advertisements,
#: deprecation and ``weights_only`` warnings, the joblib launcher's ``Parallel(...)`` dump.
NOISE = ("GPU available", "TPU available", "💡", "Tip:", "LOCAL_RANK", "DeprecationWarning",
         "weights_only", "Joblib.Parallel(")  # fmt: skip


def assert_quiet(result: subprocess.CompletedProcess) -> None:
    """The run's console holds none of :data:`NOISE`."""
    out = result.stdout + result.stderr
    found = [(n, line) for line in out.splitlines() for n in NOISE if n in line]
    assert not found, found[:5]


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def run_ok(*args: str, run_dir: Path, cwd: Path) -> dict:
    """Run the CLI into ``run_dir``, require success, return the run's summary."""
    result = run_cli(*args, f"hydra.run.dir={run_dir}", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return read_summary(run_dir)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until ``path`` exists while ``proc`` (stderr piped) runs; fail if it ends first."""
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"ended before {path.name}: {proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)
