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

from reglab import config_keys, rerun, stacking
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
