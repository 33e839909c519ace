"""scripts/bench_parts.py runs on tiny sizes and prints every part and ratio (nothing is
timed here: its figures are read by people, never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

PARTS = ROOT / "scripts" / "bench_parts.py"


def test_prints_each_part_and_the_ratios(tmp_path):
    result = subprocess.run(
        [sys.executable, str(PARTS), "--members", "2", "--threads", "1", "--blocks", "1",
         "--calls", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    names = re.findall(r"^(\S.*?)\s+\d+\.\d{3}\s+\d+\.\d{3}$", result.stdout, re.M)
    assert names == ["bare", "VmapOrder", "auto, K=1", "false, K=1", "vmap, K=1", "vmap, K=2",
                     "baddbmm, K=2", "MemberSGD, K=2", "torch SGD × 2"]  # fmt: skip
    ratios = re.findall(r"^  .+?\s(\d+\.\d\d)$", result.stdout, re.M)
    assert len(ratios) == 7 and all(float(r) > 0 for r in ratios)
