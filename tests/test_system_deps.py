"""The SLURM and browser test groups without their system packages: skipped, naming the
one command that enables them, unless run as root (CI, `make test`), where they FAIL; and
scripts/system_deps.sh, which `make system-deps`, `make test` and .ci/run share."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import conftest
import pytest
import slurm_fixture
from conftest import ROOT, require_chromium

SCRIPT = ROOT / "scripts" / "system_deps.sh"


@pytest.fixture
def no_chromium(monkeypatch):
    monkeypatch.delenv("REGLAB_CHROMIUM", raising=False)
    monkeypatch.delenv("REGLAB_SKIP_BROWSER", raising=False)
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    monkeypatch.setattr(conftest, "CHROMIUM_PATHS", ())


def test_missing_chromium_skips_with_the_command_for_a_user(no_chromium, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="`sudo make system-deps` enables"):
        require_chromium()


def test_missing_chromium_fails_as_root(no_chromium, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(pytest.fail.Exception, match="make system-deps"):
        require_chromium()
    monkeypatch.setenv("REGLAB_SKIP_BROWSER", "1")
    with pytest.raises(pytest.skip.Exception, match="REGLAB_SKIP_BROWSER=1"):
        require_chromium()


def test_no_slurm_cluster_skips_with_the_command_for_a_user(monkeypatch):
    monkeypatch.delenv("REGLAB_SKIP_SLURM", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    down = subprocess.CompletedProcess([], 1, "", "slurmctld not running")
    monkeypatch.setattr(slurm_fixture, "_script", lambda cmd, timeout: down)
    with pytest.raises(pytest.skip.Exception, match="`sudo make system-deps slurm-start`"):
        slurm_fixture.ensure_slurm_cluster()


def _shimmed(tmp_path: Path, uid: int) -> dict[str, str]:
    """PATH where chromium is not installed and `id -u` says ``uid`` (apt is never reached)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "dpkg-query").write_text(
        '#!/bin/bash\nfor a in "$@"; do [[ $a == chromium ]] && exit 1; done\n'
        'exec /usr/bin/dpkg-query "$@"\n'
    )
    (bin_dir / "id").write_text(f"#!/bin/bash\necho {uid}\n")
    (bin_dir / "apt-get").write_text("#!/bin/bash\necho apt-get must not run >&2; exit 9\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True)


@pytest.mark.skipif(not Path("/usr/bin/dpkg-query").exists(), reason="needs Debian's dpkg")
def test_system_deps_script_names_what_is_missing(tmp_path):
    user = _shimmed(tmp_path, 1000)
    check = _run("--check", env=user)
    assert check.returncode == 1 and "missing: chromium" in check.stdout
    if_root = _run("--if-root", env=user)  # `make test` as a user: say it, do not install
    assert if_root.returncode == 0 and "`sudo make system-deps` enables" in if_root.stdout
    install = _run(env=user)
    assert install.returncode == 1 and "needs root: sudo make system-deps" in install.stderr
    as_root = _run("--if-root", env=_shimmed(tmp_path / "root", 0))  # reaches apt-get
    assert as_root.returncode == 1 and "apt-get must not run" in as_root.stderr


def test_make_test_installs_first_and_make_install_installs_nothing():
    dry = {t: subprocess.run(["make", "-n", t], cwd=ROOT, capture_output=True, text=True).stdout
           for t in ("test", "install", "system-deps")}  # fmt: skip
    assert dry["test"].index("system_deps.sh --if-root") < dry["test"].index("pytest")
    assert "system_deps" not in dry["install"] and "apt" not in dry["install"]
    assert "scripts/system_deps.sh" in dry["system-deps"]
    assert "bash scripts/system_deps.sh\n" in (ROOT / ".ci" / "run").read_text()
