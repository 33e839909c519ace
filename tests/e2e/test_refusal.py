"""Refusals through the real ``reglab-train``: one line, exit status 2, nothing written, and
no torch, Lightning or pandas imported on the way (issue 13, items 1 and 2). The tests that
audit the imports run the console script in a subprocess; the others run it in this
process (inprocess.py)."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, compose_config, read_summary
from inprocess import run_main

from reglab import config_keys, rerun, stacking, trainer_config
from reglab.resolvers import compose
from reglab.validation import ConfigError, added_keys, validate

CLI = Path(sys.executable).parent / "reglab-train"
HEAVY = {"torch", "pytorch_lightning", "lightning", "lightning_fabric", "pandas", "matplotlib",
         "wandb", "tensorboard", "torchvision"}  # fmt: skip
# Runs the console script as the shell would, then writes the top-level modules it imported.
AUDIT = """
import atexit, json, os, runpy, sys
atexit.register(lambda: json.dump(sorted({m.split(".")[0] for m in sys.modules} | set(
    m for m in sys.modules if m.startswith("reglab."))), open(os.environ["AUDIT_OUT"], "w")))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def reglab_train(*args: str, cwd: Path, audit: Path | None = None) -> subprocess.CompletedProcess:
    """The console script in a subprocess; with ``audit``, the modules it imported go there."""
    assert CLI.is_file(), f"{CLI}: the console script is not installed (make install)"
    env = os.environ | {"REGLAB_LOG_DIR": str(cwd / "logs"), "HYDRA_FULL_ERROR": "0"}
    cmd = [str(CLI), *args]
    if audit is not None:
        cmd, env["AUDIT_OUT"] = [sys.executable, "-c", AUDIT, *cmd], str(audit)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def assert_refused(result: subprocess.CompletedProcess, cwd: Path, *parts: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("reglab: error: "), result.stderr
    assert all(part in lines[0] for part in parts), lines[0]
    assert not (cwd / "logs").exists() and not (cwd / "outputs").exists()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["+foo=1"], 2),
        (["dropout.p_hidden=1.5"], 2),
        (["model.hiden=3"], 2),
        (["model=foo"], 2),
        (["data.crop=29"], 2),
        (["data.root=/nonexistent", "data.download=false"], 2),
        (["regularizer=l2", "regularizer.lam=inf"], 2),
        (["--help"], 0),
        (["--cfg", "job"], 0),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else str(a),
)
def test_refusals_help_and_cfg_import_no_torch_lightning_or_pandas(tmp_path, args, code):
    audit = tmp_path / "modules.json"
    result = reglab_train(*args, cwd=tmp_path, audit=audit)
    assert result.returncode == code, result.stderr[-2000:]
    modules = set(json.loads(audit.read_text()))
    assert {"hydra", "omegaconf", "reglab.train", "reglab.validation"} <= modules  # it ran
    assert not modules & HEAVY, f"imported {sorted(modules & HEAVY)}"


REFUSED = [
    ("regularizer=l2 regularizer.lam=inf", "regularizer.lam=inf: must be a finite number"),
    ("optimizer.lr=nan", "optimizer.lr=nan: must be a finite number"),
    ("+meta.score=-inf", "meta.score=-inf: must be a finite number"),
    ("++foo.bar=1", "foo.bar=1: not read by reglab"),  # ++ adds a key the config lacks
    ("data.on_device=false", "data.on_device=False: must be true"),  # nothing else is built
    ("data.crop=29", "data.crop=29: must be <= 28 (image size)"),  # data facts, no torch
    ("data.val_size=60000", "data.val_size=60000: must be < 60000 (mnist train size)"),
    ("data.train_size=50001", "data.train_size=50001: must be in [1, 50000]"),
    ("data=cifar10 data.crop=33", "data.crop=33: must be <= 32"),
    ("data.root=/nonexistent data.download=false", "data.root=/nonexistent: MNIST not found"),
    ("scheduler=step scheduler.step_size=0", "scheduler.step_size=0: must be an integer > 0"),
    ("scheduler=step scheduler.step_size=2.5", "scheduler.step_size=2.5: must be an integer"),
    ("scheduler=step scheduler.gamma=0", "scheduler.gamma=0: must be a factor in (0, 1]"),
    ("scheduler=exponential scheduler.gamma=1.5", "scheduler.gamma=1.5: must be a factor"),
    (
        "scheduler=cosine trainer.max_epochs=-1 trainer.max_steps=100",
        "scheduler.T_max=-1: must be an integer > 0 (epochs; set trainer.max_epochs",
    ),
    ("scheduler=cosine +scheduler.eta_min=-1", "scheduler.eta_min=-1: must be a number >= 0"),
    (
        "scheduler=step +scheduler.last_epoch=3",
        "scheduler.last_epoch=3: unknown key; allowed keys are step_size, gamma",
    ),
    (
        "+scheduler.gamma=0.5",
        "scheduler.gamma=0.5: not read by reglab; allowed keys under scheduler are none",
    ),
    (
        "momentum_ramp={start:0.5,end:1.0,steps:9}",
        "momentum_ramp.end=1.0: must be a momentum in [0, 1)",
    ),
    ("momentum_ramp={start:-0.1,end:0.9,steps:9}", "momentum_ramp.start=-0.1: must be"),
    ("momentum_ramp={start:0.5,end:0.9,steps:0}", "momentum_ramp.steps=0: must be an integer"),
    (
        "+momentum_ramp.start=0.5",
        "momentum_ramp={'start': 0.5}: must be null or all of start, end, steps",
    ),
    ("+foo=1", "foo=1: not read by reglab; allowed keys at the top level are name, seed"),
    (
        "+trainer.bogus=1",
        "trainer.bogus=1: not an argument of pytorch_lightning.Trainer; allowed keys"
        " are accelerator, strategy, devices",
    ),
    (
        "+checkpoint.bogus=1",
        "checkpoint.bogus=1: not read by reglab; allowed keys under checkpoint are enabled",
    ),
    (
        "+optimizer.foreach=true",
        "optimizer.foreach=True: unknown key; allowed keys are lr, "
        "momentum, dampening, weight_decay, nesterov",
    ),
    (
        "regularizer=l2 +regularizer.foo=1",
        "regularizer.foo=1: unknown key; allowed keys are lam, include_biases, include_batchnorm",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_through_the_cli(tmp_path, overrides, message):
    result = run_main(*overrides.split(), cwd=tmp_path)
    assert_refused(result, tmp_path, message)


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


def test_top_level_refusal_names_meta(tmp_path):
    result = run_main("+foo.bar=1", cwd=tmp_path)
    assert_refused(result, tmp_path, "foo.bar=1: not read by reglab", ", meta", "+meta.bar=")


def test_a_bad_value_in_a_sweeps_fixed_overrides_is_refused_up_front(tmp_path):
    result = run_main("-m", "seed=0,1", "+foo=1", cwd=tmp_path)
    assert_refused(result, tmp_path, "foo=1: not read by reglab")


@pytest.mark.slow
def test_meta_is_allowed_recorded_and_result_neutral(tmp_path, data_dir):
    tiny = ["data=digits", "model.hidden=[16]", "trainer.max_steps=5", "threads=1"]
    run_dir = tmp_path / "run"
    args = ["+meta.note=hello", "+meta.tags=[a,b]", f"hydra.run.dir={run_dir}"]
    result = run_main(*tiny, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(run_dir)
    assert summary["status"] == "completed"
    assert summary["meta"] == {"note": "hello", "tags": ["a", "b"]}
    # a sweep: meta, and every key below it, stays out of the job folder's name, so a
    # rerun with another note (stacked, here) finds the completed job and skips it
    sweep = tmp_path / "sweep"
    for note, launcher in (("+meta={note:hi}", "local"), ("+meta.note=later", "stacked")):
        result = run_main(
            "-m", *tiny, "seed=0", note, f"launcher={launcher}", f"hydra.sweep.dir={sweep}",
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        [job] = [p.parent for p in sweep.glob("*/summary.json")]
        assert "meta" not in job.name and read_summary(job)["meta"] == {"note": "hi"}


def test_meta_is_neutral_for_the_rerun_guard_and_stacks():
    old = {"seed": 0, "meta": {"note": "a"}}
    assert rerun.changed_settings(old, {"seed": 0, "meta": {"note": "b", "x": 1}}) == []
    assert stacking.stack_key(old) == stacking.stack_key({"seed": 0})
    exclude = compose(hydra=True).hydra.job.config.override_dirname.exclude_keys
    assert "meta" in exclude and "meta" in rerun.HOW_KEYS


def test_keys_experiments_define_and_whole_ramps_are_accepted():
    for overrides in (
        ["experiment=dropout_rate_fixed_pn"],  # defines a top-level fixed_pn
        ["momentum_ramp={start:0.5,end:0.99,steps:100}", "scheduler=step"],
        ["+meta.note=hello", "scheduler=cosine", "optimizer=adam"],
    ):
        validate(compose_config(*overrides), added_keys(overrides))
    overrides = ["experiment=dropout_rate_fixed_pn", "+fixed_pn.bogus=1"]
    with pytest.raises(ConfigError, match=re.escape("fixed_pn.bogus=1: not read by reglab")):
        validate(compose_config(*overrides), added_keys(overrides))


def _params(target: str) -> inspect.Signature:
    from hydra.utils import get_object

    from reglab.classifier import MEMBER_OPTIMIZERS  # what reglab builds for torch.optim targets

    return inspect.signature(MEMBER_OPTIMIZERS.get(target) or get_object(target))


def test_the_light_key_lists_match_the_real_signatures():
    """config_keys lets validation skip torch; it must say what the targets really read."""
    from reglab.classifier import MEMBER_OPTIMIZERS
    from reglab.data.sources import LOADERS
    from reglab.datasets import DATASETS
    from reglab.models.blocks import ACTIVATIONS

    assert tuple(LOADERS) == tuple(DATASETS)
    assert tuple(ACTIVATIONS) == config_keys.ACTIVATION_NAMES
    assert tuple(MEMBER_OPTIMIZERS) == config_keys.OPTIMIZER_TARGETS
    passed = {"input_shape", "num_classes", "dropout", "seed", "corruption", "params", "members"}
    passed |= {"optimizer", "last_epoch", "verbose", "self"}
    for target, keys in config_keys.TARGET_KEYS.items():
        params = _params(target).parameters
        var = {n for n, p in params.items() if p.kind is inspect.Parameter.VAR_KEYWORD}
        if keys is None:
            assert var, f"{target}: takes no **kwargs; list its keys"
            continue
        named = set(params) - var - passed
        if "regularizers" in target and target != "reglab.regularizers.Regularizer":
            named |= set(config_keys.TARGET_KEYS["reglab.regularizers.Regularizer"])
        assert set(keys) == named, f"{target}: listed {sorted(keys)}, reads {sorted(named)}"


def test_every_target_in_conf_is_listed_and_the_top_level_keys_are_known():
    targets = set()
    for path in CONF.rglob("*.yaml"):
        text = path.read_text()
        targets |= {line.split(":", 1)[1].strip() for line in text.splitlines()
                    if line.strip().startswith("_target_:")}  # fmt: skip
    targets -= {"reglab.sweep.SweepReport", "pytorch_lightning.Trainer"}
    assert targets <= set(config_keys.TARGET_KEYS), targets - set(config_keys.TARGET_KEYS)
    keys = set(compose_config().keys())
    assert keys <= set(config_keys.TOP_KEYS)
    assert set(config_keys.TOP_KEYS) - {"meta"} <= keys


def test_force_add_of_an_existing_key_is_accepted():
    """``++key=value`` sets a key the config has (as ``key=value`` would); only a key it
    adds is checked as ``+key`` is."""
    from reglab.precheck import precheck
    from reglab.train import CONFIG_DIR

    precheck(CONFIG_DIR, ["++seed=3", "++checkpoint.keep=true", "++model.hidden=[8]"])
    with pytest.raises(ConfigError, match=re.escape("checkpoint.kept=True: not read by reglab")):
        precheck(CONFIG_DIR, ["++checkpoint.kept=true"])


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
