"""reglab.run.build_trainer: the Trainer Hydra instantiates from ``cfg.trainer``, with the
keys a stack needs set by reglab."""

from __future__ import annotations

from conftest import compose_config

from reglab import run


def _trainer_kwargs(monkeypatch, tmp_path, *overrides: str) -> dict:
    seen = {}
    monkeypatch.setattr(run, "instantiate", lambda node, **kwargs: seen.update(kwargs))
    run.build_trainer(compose_config(*overrides), [], False, 10, tmp_path)
    return seen


def test_devices_auto_is_one_device(monkeypatch, tmp_path):
    """Lightning's ``devices="auto"`` takes every GPU (and would start DDP); a run (a stack)
    trains on one device, so ``auto`` becomes 1 and other GPUs are the launcher's."""
    assert _trainer_kwargs(monkeypatch, tmp_path, "trainer.devices=auto")["devices"] == 1
    assert _trainer_kwargs(monkeypatch, tmp_path)["devices"] == 1


def test_reglab_owns_the_loop_keys(monkeypatch, tmp_path):
    kwargs = _trainer_kwargs(monkeypatch, tmp_path, "trainer.max_epochs=3")
    assert kwargs["max_epochs"] == -1 and kwargs["max_steps"] == 10  # members' own limits
    assert kwargs["limit_val_batches"] == 0 and kwargs["enable_checkpointing"] is False
