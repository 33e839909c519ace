"""Summaries written by the release before the per-experiment report render with the same
numbers: every table cell and plotted series (means, ±1 s.d. bars and bands, published
overlays) equals what that release drew, recorded in tests/fixtures/report_numbers.json
(tests/fixtures/record_report_numbers.py, at commit 0b578cb) for the synthetic sweeps of
every experiment and four real quick sweeps (tests/fixtures/recorded_sweeps.json.gz)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from report_fixtures import make_all
from report_numbers import NUMBERS, report_numbers, write_recorded_sweeps

from reglab.report import experiments as exps
from reglab.report import sweeps as sw

RECORDED = json.loads(NUMBERS.read_text())


def _same(a, b, where: str) -> None:
    """Equal structure; numbers equal to 1e-9 relative; strings equal."""
    if isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} items, recorded {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{where}: {a} vs recorded {b}"
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {a} vs recorded {b}"
    else:
        assert a == b, f"{where}: {a!r} vs recorded {b!r}"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    tmp = tmp_path_factory.mktemp("numbers")
    return {
        "synthetic": make_all(tmp / "logs", list(RECORDED["synthetic"])),
        "recorded": write_recorded_sweeps(tmp / "real"),
    }


@pytest.mark.parametrize(
    ("kind", "experiment"), [(k, e) for k, v in RECORDED.items() for e in sorted(v)]
)
def test_report_shows_the_recorded_numbers(roots, kind: str, experiment: str) -> None:
    sweep = sw.read_sweep(roots[kind][experiment])
    reports = exps.plot_sweep(experiment, sweep.completed, sweep.grid_keys, sweep.unnamed_keys)
    now = [report_numbers(setting, report) for setting, report in reports]
    _same(json.loads(json.dumps(now)), RECORDED[kind][experiment], f"{kind}/{experiment}")
