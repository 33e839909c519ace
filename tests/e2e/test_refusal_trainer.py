"""The trainer and callbacks groups through validation (issue 19): what cannot work when one
Trainer fits a stack is refused with the reason, before torch or Lightning loads; what
works is accepted, a user's own callbacks and Trainer subclass included. (The CLI helpers
are test_refusal's.)"""

from __future__ import annotations

import inspect
import json
import re

import pytest
from conftest import compose_config
from test_refusal import HEAVY, assert_refused, reglab_train

from reglab import config_keys, trainer_config
from reglab.validation import ConfigError, added_keys, validate


def _case(overrides: str, message: str, also: str = "", marks=()):
    return pytest.param(overrides, message, also, id=overrides, marks=marks)


_NO_NVIDIA = pytest.mark.skipif(trainer_config.nvidia_driver(), reason="an NVIDIA GPU is here")
_NO_MPS = pytest.mark.skipif(trainer_config.apple_silicon(), reason="Apple silicon is here")
#: The trainer and callbacks groups (issue 19): what cannot work when one Trainer fits a
#: stack is refused with the reason and what is allowed, before torch or Lightning loads.
STACK_REFUSED = [
    _case("+trainer.accumulate_grad_batches=4", "trainer.accumulate_grad_batches=4: must be 1 "
          "(reglab steps every member on every batch (manual optimization)"),
    _case("trainer.devices=2", "trainer.devices=2: must be 1 or auto (a run trains on one device",
          "launcher=stacked_slurm"),
    _case("+trainer.num_nodes=2", "trainer.num_nodes=2: must be 1 (a run trains on one device"),
    _case("+trainer.strategy=ddp", "trainer.strategy=ddp: must be auto (a run trains on one"),
    _case("trainer.accelerator=tpu", "trainer.accelerator=tpu: must be cpu, gpu, cuda, mps or"),
    _case("trainer.accelerator=gpu", "trainer.accelerator=gpu: must be cpu or auto (this machine "
          "has no NVIDIA GPU", marks=_NO_NVIDIA),
    _case("trainer=gpu", "trainer.accelerator=gpu: must be cpu or auto", marks=_NO_NVIDIA),
    _case("trainer.accelerator=mps", "(MPS needs Apple silicon", marks=_NO_MPS),
    _case("trainer.precision=16-mixed", "trainer.precision=16-mixed: must be 32-true or "
          "bf16-mixed on the CPU"),
    _case("trainer.precision=64-true", "trainer.precision=64-true: must be 32-true, 16-mixed, "
          "bf16-mixed or tf32 (a stack's batches come as float32"),
    _case("+trainer.barebones=true +trainer.detect_anomaly=true", "trainer.detect_anomaly=True: "
          "must be null or false with trainer.barebones=true"),
    _case("trainer.precision=8", "trainer.precision=8: must be 32-true, 32, 64-true, 16-mixed"),
    _case("trainer.num_sanity_val_steps=5", "trainer.num_sanity_val_steps=5: must be 0 (members"),
    _case("+trainer.limit_val_batches=0.5", "trainer.limit_val_batches=0.5: must be null (reglab"),
    _case("+trainer.enable_checkpointing=true", "checkpoints are per member: checkpoint.*"),
    _case("+trainer.logger=true", "trainer.logger=True: must be null (reglab sets it) (pick "
          "loggers with the logger group"),
    _case("+trainer.callbacks=[]", "trainer.callbacks=[]: must be null", "+callbacks.<name>."),
    _case("+trainer.min_epochs=2", "trainer.min_epochs=2: must be null", "their own limits"),
    _case("+trainer.max_time=null +trainer.min_steps=3", "trainer.min_steps=3: must be null"),
    _case("+trainer.fast_dev_run=true", "trainer.fast_dev_run=True: must be null or false"),
    _case("+trainer.sync_batchnorm=true", "trainer.sync_batchnorm=True: must be false"),
    _case("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1: must be null or a number"),
    _case("trainer.gradient_clip_algorithm=l2", "trainer.gradient_clip_algorithm=l2: must be norm"),
    _case("trainer.val_check_interval=0", "trainer.val_check_interval=0: must be null, an integer"),
    _case("+trainer.bogus=1", "trainer.bogus=1: not an argument of pytorch_lightning.Trainer"),
    _case("trainer._target_=does.not.Exist", "trainer._target_=does.not.Exist: cannot be imported "
          "(ModuleNotFoundError: No module named 'does')"),
    _case("trainer._target_=lightning.pytorch.Trainer", "use pytorch_lightning.Trainer"),
    _case("~callbacks.members", "callbacks.members=None: must be reglab.callbacks.MemberRuns"),
    _case("~callbacks", "callbacks.members=None: must be reglab.callbacks.MemberRuns"),
    _case("+callbacks.members.bogus=1", "callbacks.members.bogus=1: unknown key; allowed keys are "
          "every_minutes"),
    _case("+callbacks.stop._target_=pytorch_lightning.callbacks.EarlyStopping", "callbacks.stop."
          "_target_=pytorch_lightning.callbacks.EarlyStopping: cannot work in a stack (per-member "
          "stopping: stop_when_fit"),
    _case("+callbacks.ckpt._target_=pytorch_lightning.callbacks.ModelCheckpoint",
          "cannot work in a stack (checkpoints are per member: checkpoint.*"),
    _case("+callbacks.mine.monitor=val", "callbacks.mine={'monitor': 'val'}: has no _target_"),
    _case("+callbacks.lr._target_=pytorch_lightning.callbacks.LearningRateMonitor "
          "+callbacks.lr.x=1", "callbacks.lr.x=1: unknown key; allowed keys are logging_interval"),
    _case("+callbacks.lr._target_=lightning.pytorch.callbacks.LearningRateMonitor",
          "use pytorch_lightning.callbacks.LearningRateMonitor"),
    _case("-m trainer=gpu seed=0,1", "trainer.accelerator=gpu: must be cpu or auto",
          marks=_NO_NVIDIA),  # a sweep whose jobs train here
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "message", "also"), STACK_REFUSED)
def test_what_cannot_work_in_a_stack_is_refused_before_torch(tmp_path, overrides, message, also):
    audit = tmp_path / "modules.json"
    result = reglab_train(*overrides.split(), cwd=tmp_path, audit=audit)
    assert_refused(result, tmp_path, message, also)
    modules = set(json.loads(audit.read_text()))
    assert "reglab.validation" in modules and not modules & HEAVY, sorted(modules & HEAVY)


def test_trainer_params_are_lightnings():
    """config_keys.TRAINER_PARAMS lets validation skip Lightning: it must not drift."""
    import pytorch_lightning as pl

    params = [k for k in inspect.signature(pl.Trainer.__init__).parameters if k != "self"]
    assert tuple(params) == config_keys.TRAINER_PARAMS
    refused = set(trainer_config.SET_BY_REGLAB) | set(trainer_config.TRAINER_RULES)
    assert refused <= set(params), refused - set(params)


ACCEPTED = [
    "+callbacks.lr_monitor._target_=pytorch_lightning.callbacks.LearningRateMonitor",
    "+callbacks.lr_monitor.logging_interval=step",
    "trainer.gradient_clip_val=1.0",
    "trainer.gradient_clip_algorithm=value",
    "trainer.profiler=simple",
    "trainer.precision=bf16-mixed",
    "trainer.devices=auto",
    "trainer.default_root_dir=/tmp/x",
    "+trainer.accumulate_grad_batches=1",
    "+trainer.strategy=auto",
    "+trainer.num_nodes=1",
    "+trainer.detect_anomaly=true",
    "+trainer.inference_mode=false",
    "+trainer.barebones=false",
    "+trainer.enable_checkpointing=false",
]


def test_what_works_in_a_stack_is_accepted(monkeypatch):
    validate(compose_config(*ACCEPTED), added_keys(ACCEPTED))
    for precision in ("32", "tf32"):
        validate(compose_config(f"trainer.precision={precision}"))
    validate(compose_config("+trainer.barebones=true"))
    monkeypatch.setattr(trainer_config, "nvidia_driver", lambda: True)
    validate(compose_config("trainer=gpu", "trainer.precision=16-mixed"))
    for overrides, message in (  # one loss scale for all members; clipping before unscaling
        (["launcher=stacked"], "16-mixed has one loss scale for the whole stack"),
        (["trainer.gradient_clip_val=1"], "clips each member's gradients before the 16-bit"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate(compose_config("trainer=gpu", "trainer.precision=16-mixed", *overrides))


def test_the_accelerator_is_checked_against_this_machine(monkeypatch):
    """Read from the system, never from torch; jobs a SLURM launcher sends elsewhere are
    checked where they train."""
    tc = trainer_config
    gpu, mps = compose_config("trainer=gpu"), compose_config("trainer.accelerator=mps")
    auto16 = compose_config("trainer.accelerator=auto", "trainer.precision=16-mixed")
    monkeypatch.setattr(tc, "nvidia_driver", lambda: False)
    monkeypatch.setattr(tc, "apple_silicon", lambda: False)
    for cfg, message in ((gpu, "no NVIDIA GPU"), (mps, "Apple silicon"), (auto16, "on the CPU")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate(cfg)
    validate(gpu, choices={"launcher": "stacked_slurm"})  # the jobs train elsewhere
    validate(gpu, here=False)
    with pytest.raises(ConfigError, match="no NVIDIA GPU"):
        validate(gpu, choices={"launcher": "stacked"})
    monkeypatch.setattr(tc, "nvidia_driver", lambda: True)
    validate(gpu)
    validate(auto16)
    monkeypatch.setattr(tc, "apple_silicon", lambda: True)
    validate(mps)


OWN = """
import pytorch_lightning as pl


class Hello(pl.Callback):
    def __init__(self, greeting: str = "hi") -> None:
        self.greeting = greeting


class MyTrainer(pl.Trainer):
    def __init__(self, note: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
"""


def test_callbacks_and_a_trainer_of_your_own(tmp_path, monkeypatch):
    """A callback class on PYTHONPATH, or in a callbacks/*.yaml of your hydra.searchpath,
    and a Trainer subclass: their keys are their constructors'."""
    (tmp_path / "mine_pkg.py").write_text(OWN)
    (tmp_path / "conf" / "callbacks").mkdir(parents=True)
    (tmp_path / "conf" / "callbacks" / "mine.yaml").write_text(
        "hello:\n  _target_: mine_pkg.Hello\n  greeting: hey\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    own = ["+callbacks.hi._target_=mine_pkg.Hello", "+callbacks.hi.greeting=yo"]
    validate(compose_config(*own), added_keys(own))
    searchpath = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "callbacks=[default,mine]"]
    cfg = compose_config(*searchpath)
    assert set(cfg.callbacks) == {"members", "hello"}
    validate(cfg)
    with pytest.raises(ConfigError, match=re.escape("callbacks.mine.loud=1: unknown key; allowed "
                                                    "keys are greeting")):  # fmt: skip
        bad = ["+callbacks.mine._target_=mine_pkg.Hello", "+callbacks.mine.loud=1"]
        validate(compose_config(*bad), added_keys(bad))
    with pytest.raises(ConfigError, match=re.escape("callbacks.members=None: must be")):
        validate(compose_config(*searchpath[:1], "callbacks=mine"))
    trainer = ["trainer._target_=mine_pkg.MyTrainer", "+trainer.note=x"]
    validate(compose_config(*trainer), added_keys(trainer))
    for overrides, message in (
        ([*trainer, "+trainer.bogus=1"], "trainer.bogus=1: not an argument of mine_pkg.MyTrainer"),
        (["trainer._target_=mine_pkg.Hello"], "must be pytorch_lightning.Trainer or a subclass"),
        ([*trainer, "+trainer.accumulate_grad_batches=2"], "accumulate_grad_batches=2: must be 1"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate(compose_config(*overrides))
