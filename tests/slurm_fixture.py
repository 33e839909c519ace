"""The local one-node SLURM cluster (scripts/slurm_local.sh) as a pytest fixture.

A test module gets the ``slurm_cluster`` fixture by importing
``slurm_cluster_fixture`` from here (the fixture is registered under its
``name``). The cluster is started only if it is not already up and stopped at
the end of the session only if this fixture started it; every test that uses it
runs in one pytest-xdist worker (conftest puts them in the ``slurm`` group).

Where SLURM's packages are missing (``scripts/system_deps.sh --check slurm``),
or they are installed but the cluster is down and this is not root (starting
daemons needs root), the tests skip with the command that enables them, except
in CI (REGLAB_CI=1 or CI=true), where they FAIL. A cluster that fails to start
FAILS the test with the script's output and log tails. ``REGLAB_SKIP_SLURM=1``
skips them explicitly, outside CI.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import missing_system_packages, skipped_on_request, system_package_missing

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"


@dataclass(frozen=True)
class SlurmCluster:
    partition: str
    env: dict[str, str]  # what `slurm_local.sh env` exports (SLURM_CONF, PATH, ...)
    started_here: bool


def _script(cmd: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _script_env() -> dict[str, str]:
    """Parse the ``export K=V`` lines of ``slurm_local.sh env`` ($PATH etc. expanded)."""
    out = _script("env", timeout=30).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export ") :].split("=", 1)
            env[key] = os.path.expandvars(value)
    return env


def ensure_slurm_cluster(timeout: float = 600) -> SlurmCluster:
    """The cluster, started here unless it is up (see the module's docstring)."""
    skipped_on_request("REGLAB_SKIP_SLURM")
    started_here = False
    if _script("status", timeout=60).returncode != 0:
        missing = missing_system_packages("slurm")
        if missing:  # as root the fixture then starts the cluster; a user starts it too
            root = os.geteuid() == 0
            command = "make system-deps" if root else "sudo make system-deps slurm-start"
            system_package_missing(f"SLURM ({' '.join(missing)})", command)
        if os.geteuid() != 0:  # starting SLURM's daemons needs root
            system_package_missing("a running local SLURM cluster", "sudo make slurm-start")
        res = _script("start", timeout=timeout)
        if res.returncode != 0:
            pytest.fail(
                f"`{SCRIPT} start` failed (exit {res.returncode})"
                f"\n--- stdout ---\n{res.stdout}\n--- stderr ---\n{res.stderr}",
                pytrace=False,
            )
        started_here = True
    env = _script_env()
    partition = env.get("REGLAB_SLURM_PARTITION", "debug")
    return SlurmCluster(partition=partition, env=env, started_here=started_here)


def stop_slurm_cluster() -> None:
    _script("stop", timeout=120)


@pytest.fixture(scope="session", name="slurm_cluster")
def slurm_cluster_fixture() -> Iterator[SlurmCluster]:
    cluster = ensure_slurm_cluster()
    # SLURM_CONF and the sacct stand-in's folder on PATH, for submitit's subprocesses.
    saved = {key: os.environ.get(key) for key in cluster.env}
    os.environ.update(cluster.env)
    try:
        yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if cluster.started_here:
            stop_slurm_cluster()
