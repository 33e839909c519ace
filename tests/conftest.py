"""Shared fixtures: the real MNIST from ../shared/data (or REGLAB_DATA_DIR), the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest
from hydra import compose, initialize_config_dir

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


#: The one command that installs what the SLURM and browser test groups need (and, for a
#: user who is not root, starts the one-node cluster the SLURM tests submit to).
SYSTEM_DEPS = "sudo make system-deps"


def system_package_missing(what: str, skip_var: str, command: str = SYSTEM_DEPS) -> NoReturn:
    """Skip a test group whose system package is missing, naming the command that enables
    it; as root (CI, and `make test`, which installs them first) FAIL instead."""
    if os.environ.get(skip_var) == "1":
        pytest.skip(f"{skip_var}=1 ({what} is missing)")
    if os.geteuid() != 0:
        pytest.skip(f"{what} is missing: `{command}` enables these tests")
    pytest.fail(f"{what} is missing: run `make system-deps` (`make test` runs it as root)")


#: Where Debian's ``chromium`` package puts the browser, if it is not on PATH.
CHROMIUM_PATHS = ("/usr/bin/chromium",)


def require_chromium() -> str:
    """Headless Chromium's path (REGLAB_CHROMIUM, else `chromium` on PATH)."""
    candidates = [os.environ.get("REGLAB_CHROMIUM"), shutil.which("chromium"), *CHROMIUM_PATHS]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    return found or system_package_missing("headless Chromium", "REGLAB_SKIP_BROWSER")


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
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=False)


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
