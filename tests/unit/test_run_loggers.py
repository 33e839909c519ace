"""Config and results in every logger, for each member of a stack: its resolved config as
hyperparameters (W&B config, TensorBoard hparams, CSV hparams.yaml) and its final metrics
(W&B summary, the last logged values); one W&B run per member, in the sweep's group."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import compose_config

from reglab.member import Job
from reglab.run import run_stack

pytestmark = pytest.mark.slow


def test_each_member_logs_its_config_and_final_metrics_to_every_logger(tmp_path, data_dir):
    common = ["data=digits", "model.hidden=[32]", "trainer.max_steps=30", "dropout=hidden"]
    common += ["logger=[csv,tensorboard,wandb]", "trainer.enable_progress_bar=false"]
    jobs = [
        Job(compose_config(*common, f"dropout.p_hidden={p}"), tmp_path / f"p={p}", [f"p={p}"])
        for p in (0.5, 0.8)
    ]
    summaries = run_stack(jobs)
    assert [s["stack"]["size"] for s in summaries] == [2, 2]
    for p, summary in zip((0.5, 0.8), summaries, strict=True):
        folder = tmp_path / f"p={p}"
        test_error = summary["metrics"]["test_error"]
        hparams = yaml.safe_load((folder / "csv" / "hparams.yaml").read_text())
        assert hparams["dropout.p_hidden"] == p
        # one offline W&B run per member, in its own folder (its records, not another's)
        (run,) = (folder / "wandb").glob("offline-run-*/run-*.wandb")
        records = run.read_bytes()
        assert b"dropout.p_hidden" in records and b"final/test_error" in records
        other = 0.8 if p == 0.5 else 0.5
        assert f"p={p}".encode() in records and f"p={other}".encode() not in records
        events = list((folder / "tensorboard").rglob("events.out.tfevents.*"))
        assert events and any(b"dropout.p_hidden" in e.read_bytes() for e in events)
        # the final metrics: TensorBoard's hparams metrics and the CSV's last row
        assert _tensorboard_scalars(folder / "tensorboard")["final/test_error"] == pytest.approx(
            test_error
        )
        (metrics_csv,) = (folder / "csv").rglob("metrics.csv")
        finals = pd.read_csv(metrics_csv)["final/test_error"].dropna()
        assert finals.tolist() == pytest.approx([test_error])


def _tensorboard_scalars(folder) -> dict[str, float]:
    """The last value of every scalar in the event files below ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values = {}
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        values |= {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}
    return values
