"""The lecture illustrations as programs: ``reglab-report --illustrate`` runs
``python -m reglab.illustrate.<name>`` in a subprocess. What they draw is tested in
tests/unit/test_illustrate.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow  # > 5 s: not in make test-fast
def test_each_module_runs_as_a_program_outside_the_checkout(tmp_path: Path) -> None:
    """Shipped in the package, so it needs no checkout (here: --help from an empty folder)."""
    from reglab.figures import MODULES

    for name in MODULES:
        cmd = [sys.executable, "-m", f"reglab.illustrate.{name}", "--help"]
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert "--out" in done.stdout
