"""The system packages the SLURM and browser tests need (scripts/system_deps.sh): checked
for, never guessed. Absent, their tests skip naming the one command that installs them;
in CI (REGLAB_CI=1, which .ci/run exports, or CI=true) they FAIL instead, and the
explicit opt-outs REGLAB_SKIP_SLURM / REGLAB_SKIP_BROWSER are ignored. Present, the tests
run. `make test` says what is missing and installs nothing; .ci/run installs first."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import conftest
import pytest
import slurm_fixture
from conftest import ROOT, in_ci, missing_system_packages, require_chromium

SCRIPT = ROOT / "scripts" / "system_deps.sh"
DOWN = subprocess.CompletedProcess([], 1, "", "slurmctld not running")


@pytest.fixture
def not_ci(monkeypatch):
    for var in ("REGLAB_CI", "CI", "REGLAB_SKIP_SLURM", "REGLAB_SKIP_BROWSER"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def no_chromium(monkeypatch, not_ci):
    monkeypatch.delenv("REGLAB_CHROMIUM", raising=False)
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    monkeypatch.setattr(conftest, "CHROMIUM_PATHS", ())


@pytest.mark.parametrize("uid", [0, 1000])
def test_missing_chromium_skips_with_the_command_outside_ci(no_chromium, monkeypatch, uid):
    """As root as much as as a user: the user or the OS says nothing about CI."""
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    command = "make system-deps" if uid == 0 else "sudo make system-deps"
    with pytest.raises(pytest.skip.Exception, match=f"`{command}` enables these tests"):
        require_chromium()


@pytest.mark.parametrize(("var", "value"), [("REGLAB_CI", "1"), ("CI", "true")])
def test_missing_chromium_fails_in_ci_even_when_asked_to_skip(no_chromium, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    monkeypatch.setenv("REGLAB_SKIP_BROWSER", "1")
    assert in_ci()
    with pytest.raises(pytest.fail.Exception, match=r"headless Chromium .* is missing in CI"):
        require_chromium()


def test_the_skip_variables_switch_a_group_off_outside_ci(not_ci, monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("REGLAB_CHROMIUM", str(fake))
    assert require_chromium() == str(fake)
    monkeypatch.setenv("REGLAB_SKIP_BROWSER", "1")
    with pytest.raises(pytest.skip.Exception, match="REGLAB_SKIP_BROWSER=1"):
        require_chromium()
    monkeypatch.setenv("REGLAB_SKIP_SLURM", "1")
    with pytest.raises(pytest.skip.Exception, match="REGLAB_SKIP_SLURM=1"):
        slurm_fixture.ensure_slurm_cluster()


def test_no_slurm_packages_skip_with_the_command_outside_ci_and_fail_in_ci(not_ci, monkeypatch):
    monkeypatch.setattr(slurm_fixture, "_script", lambda cmd, timeout: DOWN)
    monkeypatch.setattr(slurm_fixture, "missing_system_packages", lambda group: ["munge"])
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # root: never started, never installed
    with pytest.raises(pytest.skip.Exception, match=r"SLURM \(munge\) is missing: `make system"):
        slurm_fixture.ensure_slurm_cluster()
    monkeypatch.setenv("REGLAB_CI", "1")
    with pytest.raises(pytest.fail.Exception, match=r"SLURM \(munge\) is missing in CI"):
        slurm_fixture.ensure_slurm_cluster()


def test_slurm_installed_but_down_needs_root_to_start(not_ci, monkeypatch):
    monkeypatch.setattr(slurm_fixture, "_script", lambda cmd, timeout: DOWN)
    monkeypatch.setattr(slurm_fixture, "missing_system_packages", lambda group: [])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="`sudo make slurm-start` enables"):
        slurm_fixture.ensure_slurm_cluster()


def _shimmed(tmp_path: Path, uid: int) -> dict[str, str]:
    """PATH where every package but chromium is installed and `id -u` says ``uid`` (apt is
    never reached)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "dpkg-query").write_text(
        '#!/bin/bash\nfor a in "$@"; do [[ $a == chromium ]] && exit 1; done\n'
        'echo "install ok installed"\n'
    )
    (bin_dir / "id").write_text(f"#!/bin/bash\necho {uid}\n")
    (bin_dir / "apt-get").write_text("#!/bin/bash\necho apt-get must not run >&2; exit 9\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True)


def test_system_deps_script_names_what_is_missing(tmp_path):
    user = _shimmed(tmp_path, 1000)
    check = _run("--check", env=user)
    assert check.returncode == 1 and "missing: chromium" in check.stdout
    assert _run("--check", "browser", env=user).returncode == 1
    assert _run("--check", "slurm", env=user).returncode == 0
    note = _run("--note", env=user)  # `make test`: say it, install nothing
    assert note.returncode == 0 and "`sudo make system-deps` enables" in note.stdout
    install = _run(env=user)
    assert install.returncode == 1 and "needs root: sudo make system-deps" in install.stderr
    root = _shimmed(tmp_path / "root", 0)
    note = _run("--note", env=root)  # as root too: nothing installed
    assert note.returncode == 0 and "`make system-deps` enables" in note.stdout
    as_root = _run(env=root)  # reaches apt-get
    assert as_root.returncode == 1 and "apt-get must not run" in as_root.stderr


@pytest.mark.parametrize("group", ["browser", "slurm"])
def test_what_the_script_promises_on_this_machine(group):
    """Installed (the script's check), the group's tests run here: Chromium is found; SLURM
    is up or can be started (slurm_fixture). In CI nothing may be missing."""
    missing = missing_system_packages(group)
    if missing:
        assert not in_ci(), f"CI must install {missing}: .ci/run runs scripts/system_deps.sh"
        pytest.skip(f"{' '.join(missing)} not installed here: nothing is promised")
    if group == "browser":
        assert Path(require_chromium()).exists()
    else:
        assert shutil.which("sinfo") and shutil.which("sbatch"), "slurm-client's commands"


def test_make_test_notes_what_is_missing_and_only_ci_installs():
    dry = {t: subprocess.run(["make", "-n", t], cwd=ROOT, capture_output=True, text=True).stdout
           for t in ("test", "test-fast", "install", "system-deps")}  # fmt: skip
    assert dry["test"].index("system_deps.sh --note") < dry["test"].index("pytest")
    assert "system_deps" not in dry["test-fast"]
    assert '-m "not slow and not slurm and not browser"' in dry["test-fast"]
    assert "system_deps" not in dry["install"] and "apt" not in dry["install"]
    assert "scripts/system_deps.sh" in dry["system-deps"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/system_deps.sh\n" in ci and "export REGLAB_CI=1" in ci
    assert "unset REGLAB_SKIP_SLURM REGLAB_SKIP_BROWSER" in ci
    assert ci.index("system_deps.sh") < ci.index("make test")
