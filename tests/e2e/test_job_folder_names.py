"""A real sweep names its job folders without the result-neutral keys, which
conf/config.yaml reads from :data:`reglab.rerun.HOW_KEYS` (``${reglab.neutral_keys:}``);
the report then finds every job it asked for. The jobs are refused (seed < 0), so nothing
trains: a fraction of a second each, in this process (inprocess.py)."""

from __future__ import annotations

import pytest
import yaml
from conftest import read_summary
from inprocess import run_main

from reglab.jobs import MULTIRUN, NEUTRAL_KEYS


@pytest.mark.parametrize(
    "launcher", [["launcher=local"], ["launcher=stacked", "launcher.max_members=4"]]
)
def test_a_real_sweep_leaves_the_neutral_keys_out_of_its_job_folders(tmp_path, launcher):
    from reglab.report.sweeps import read_sweep

    sweep = tmp_path / "sweep"
    neutral = ["threads=2", "+meta.note=x", "checkpoint.keep=true", "data.root=/elsewhere"]
    result = run_main(
        "-m", "seed=-1,-2", *neutral, *launcher, f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]  # its jobs did not complete
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["seed=-1", "seed=-2"]
    for job in ("seed=-1", "seed=-2"):
        summary = read_summary(sweep / job)
        assert summary["status"] == "failed" and "seed=" in summary["error"]
        assert summary["choices"]["data"] == "mnist"
    recorded = yaml.safe_load((sweep / MULTIRUN).read_text())
    assert recorded["hydra"]["job"]["config"]["override_dirname"]["exclude_keys"] == NEUTRAL_KEYS
    read = read_sweep(sweep)
    assert list(read.runs["status"]) == ["failed", "failed"] and read.ignored == 0
