"""Job folders completed before stacked training are still completed jobs: the rerun guard
finds no changed setting in their recorded config and skips them (issue 14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import read_summary
from inprocess import run_main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "summary_021754c.json"


def test_a_job_completed_by_the_lightning_era_reglab_is_skipped(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    shutil.copy(FIXTURE, job / "summary.json")
    before = json.loads(FIXTURE.read_text())
    result = run_main(
        "data=digits",
        "model.hidden=[16]",
        "trainer.max_steps=10",
        # Its evaluation cadence, then the default (issue 13 moved the default to every 500
        # updates: a job of the old default cadence is rerun, as its history would differ).
        "trainer.check_val_every_n_epoch=1",
        "trainer.val_check_interval=null",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already completed, skipping" in result.stdout + result.stderr
    assert read_summary(job) == before
    assert not (job / ".superseded").exists()
