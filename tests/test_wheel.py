"""reglab's Hydra launcher plugin is found from a built wheel, not only from the checkout
(editable install: tests/test_stacked_launcher.py)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run with -S (no site, so no editable-install hook): only the unpacked wheel and the
# environment's installed packages are on the path.
PROBE = """
import sys
sys.path[:0] = [WHEEL, SITE]
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
import reglab
found = {p.__name__: p for p in Plugins.instance().discover(Launcher)}
found = {name: sys.modules[p.__module__].__file__ for name, p in found.items()}
print(reglab.__file__)
print(found["StackedLauncher"])
print("torch" in sys.modules)
"""


@pytest.mark.slow
def test_the_wheel_ships_the_launcher_plugin_and_hydra_finds_it(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("reglab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hydra_plugins/reglab_stacked_launcher/stacked_launcher.py" in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace package, shared
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    site = sysconfig.get_paths()["purelib"]
    code = PROBE.replace("WHEEL", repr(str(unpacked))).replace("SITE", repr(site))
    probe = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    location, launcher, torch_loaded = probe.stdout.split()
    assert location.startswith(str(unpacked)) and launcher.startswith(str(unpacked))
    assert torch_loaded == "False"  # Hydra imports every plugin at start: no torch there
