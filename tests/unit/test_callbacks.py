"""reglab.callbacks.MemberRuns beside a user's own Lightning callback: a callback that stops
the Trainer (as EarlyStopping or Timer do) ends every member there, each as a completed run
with its final evaluation, summary and ``model.pt``."""

from __future__ import annotations

import pytorch_lightning as pl
from conftest import compose_config
from omegaconf import OmegaConf

from reglab.member import Job
from reglab.run import run_stack


class StopAfter(pl.Callback):
    """Sets ``trainer.should_stop`` after ``steps`` optimizer steps of the stack."""

    def __init__(self, steps: int) -> None:
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen >= self.steps:
            trainer.should_stop = True


def test_a_users_callback_that_stops_the_trainer_ends_every_member(tmp_path, data_dir):
    stop = {"_target_": f"{__name__}.StopAfter", "steps": 7}
    jobs = []
    for seed in (0, 1):
        cfg = compose_config("data=digits", "model.hidden=[16]", "trainer.max_epochs=50")
        OmegaConf.update(cfg, "seed", seed)
        OmegaConf.update(cfg, "callbacks.stop_after", stop, force_add=True)
        jobs.append(Job(cfg, tmp_path / f"seed{seed}"))
    summaries = run_stack(jobs)
    assert [s["stack"]["size"] for s in summaries] == [2, 2]
    for job, summary in zip(jobs, summaries, strict=True):
        assert summary["status"] == "completed", summary.get("error")
        assert summary["metrics"]["steps"] == 7  # not 50 epochs: the user's callback stopped it
        assert summary["metrics"]["test_error"] is not None
        assert (job.out_dir / "model.pt").exists()
    assert summaries[0]["metrics"]["test_error"] != summaries[1]["metrics"]["test_error"]
