"""Cadence by work, not by epoch (issue 13, item 4): evaluations every 500 updates by
default and checkpoints every few minutes, whatever the size of the training set; the
experiments keep the cadence they set."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import CONF, compose_config
from hydra.utils import instantiate
from omegaconf import OmegaConf

from reglab import cadence
from reglab.cadence import Cadence
from reglab.member import Job, Member
from reglab.run import run_stack
from reglab.signals import Signals

PER_EPOCH = ["trainer.check_val_every_n_epoch=1", "trainer.val_check_interval=null"]


def _cadence(*overrides: str) -> Cadence:
    """The cadence reglab's MemberRuns callback keeps, from a composed config."""
    cfg = compose_config(*overrides)
    runs = instantiate(cfg.callbacks.members)
    runs.attach([], {}, cfg.trainer, Signals())
    return runs.cadence


def test_default_evaluates_every_500_updates_whatever_the_epoch():
    c = _cadence()
    for nb in (1, 5, 500, 600):  # 100 images, 500, MNIST's 50k, CIFAR's 60k in batches of 100
        assert [s for s in range(1, 1501) if c.eval_due(s, nb)] == [500, 1000, 1500]
    lightning = _cadence(*PER_EPOCH)
    assert [s for s in range(1, 16) if lightning.eval_due(s, 5)] == [5, 10, 15]


def test_checkpoints_by_steps_and_by_time(monkeypatch):
    c = _cadence("checkpoint.every_n_steps=10")
    assert c.checkpoint_due(10) and not c.checkpoint_due(5)
    assert not _cadence().checkpoint_due(500)  # not by steps (or epochs) unless asked
    clock = [1000.0]
    monkeypatch.setattr(cadence.time, "monotonic", lambda: clock[0])
    c = _cadence("checkpoint.every_minutes=2")
    assert not c.time_due()
    clock[0] += 119
    assert not c.time_due()
    clock[0] += 2
    assert c.time_due() and not c.time_due()  # restarts the clock
    off = Cadence(
        SimpleNamespace(
            checkpoint=OmegaConf.create(
                {"enabled": False, "every_minutes": 0.001, "every_n_steps": 1}
            )
        )
    )
    clock[0] += 3600
    assert not off.time_due() and not off.checkpoint_due(1)


def test_the_defaults_are_five_minutes_and_500_updates():
    cfg = compose_config()
    assert cfg.checkpoint.every_minutes == 5 and cfg.checkpoint.every_n_steps is None
    assert cfg.trainer.val_check_interval == 500 and cfg.trainer.check_val_every_n_epoch is None


@pytest.mark.parametrize(
    ("extra", "steps"), [([], [69]), (PER_EPOCH, [23, 46, 69])], ids=["default", "per-epoch"]
)
def test_a_tiny_run_spends_its_time_training(tmp_path, monkeypatch, data_dir, extra, steps):
    """1,437 digits in batches of 64 (23 updates an epoch), 3 epochs: by default one
    evaluation (the final one) and no checkpoint; Lightning's rule evaluated every epoch."""
    saves = []
    monkeypatch.setattr(Member, "save_checkpoint", lambda self, *_: saves.append(self.step))
    cfg = compose_config("data=digits", "model.hidden=[16]", "trainer.max_epochs=3", *extra)
    (summary,) = run_stack([Job(cfg, tmp_path / "run")])
    assert summary["status"] == "completed" and summary["metrics"]["steps"] == 69
    assert [row["step"] for row in summary["history"]] == steps
    assert saves == []
    cfg = compose_config("data=digits", "model.hidden=[16]", "trainer.max_steps=5")
    with_time = OmegaConf.merge(cfg, {"checkpoint": {"every_minutes": 1e-9}})
    run_stack([Job(with_time, tmp_path / "timed")])
    assert saves == [1, 2, 3, 4]  # every update once the time is up; none after the last


def test_experiments_set_their_own_evaluation_cadence():
    """Changing the trainer's defaults changes no experiment: each sets both keys (or the
    per-epoch rule) in its experiment or scale file."""
    for experiment in sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")):
        for scale in ("quick", "paper"):
            files = [CONF / "experiment" / f"{experiment}.yaml"]
            files += list((CONF / "scale" / experiment).glob(f"{scale}.yaml"))
            text = "\n".join(f.read_text() for f in files)
            for key in ("check_val_every_n_epoch:", "val_check_interval:"):
                assert key in text, (experiment, scale, key)
