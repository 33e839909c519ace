"""The notebook API (reglab.classifier's module docstring): a composed config becomes a
LightningModule and its data module, which a user's own ``pl.Trainer`` fits and tests; a
reglab run's member checkpoint loads with ``StackedClassifier.load_from_checkpoint``."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_config

import reglab
from reglab.classifier import StackedClassifier
from reglab.data.stack import StackDataModule
from reglab.member import Job
from reglab.run import run_stack

SMALL = ("data=digits", "model.hidden=[32]")


def notebook_trainer(steps: int) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_a_users_trainer_fits_and_tests_a_composed_config():
    cfg = compose_config(*SMALL, "data.val_size=200", "dropout=standard")
    module = StackedClassifier.from_configs([cfg])
    data = StackDataModule.from_configs([cfg])
    assert isinstance(module.configure_optimizers(), torch.optim.Optimizer)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    trainer = notebook_trainer(30)
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 30 and module.data.steps == [30]
    assert all(not torch.equal(p, before[n]) for n, p in module.named_parameters())
    assert module.net.body.drop1.counter.tolist() == [30]  # one mask draw per step
    (tested,) = trainer.test(module, datamodule=data, verbose=False)
    assert set(tested) == {"test/error", "test/loss"}
    assert 0.0 <= tested["test/error"] < 50.0  # digits, 30 steps: well above chance
    (validated,) = trainer.validate(module, datamodule=data, verbose=False)
    assert set(validated) == {"val/error", "val/loss"}


def test_vmap_solo_false_trains_a_run_of_one_without_vmap():
    cfg = compose_config(*SMALL, "vmap_solo=false")
    module = StackedClassifier.from_configs([cfg])
    assert module.net.direct
    notebook_trainer(20).fit(module, datamodule=StackDataModule.from_configs([cfg]))
    assert module.data.steps == [20]
    assert not StackedClassifier.from_configs([cfg, cfg]).net.direct  # stacks stay vmapped


@pytest.mark.slow  # torch.compile: about 10 s on 2 CPU cores
def test_compile_true_compiles_the_stacked_net_and_trains_as_eager():
    cfgs = [compose_config(*SMALL, f"seed={s}", "compile=true") for s in (0, 1)]
    module = StackedClassifier.from_configs(cfgs)
    assert module.net._compiled_call_impl is not None  # nn.Module.compile()
    eager = StackedClassifier.from_configs([compose_config(*SMALL, f"seed={s}") for s in (0, 1)])
    for m in (module, eager):
        notebook_trainer(5).fit(m, datamodule=StackDataModule.from_configs(cfgs))
    torch.testing.assert_close(module.last_loss, eager.last_loss, rtol=1e-4, atol=1e-5)
    assert set(module.state_dict()) == set(eager.state_dict())  # checkpoints keep their keys


def test_a_users_trainer_tests_each_member_of_a_stack():
    cfgs = [
        compose_config(*SMALL, f"seed={s}", f"optimizer.lr={lr}") for s, lr in ((0, 0.1), (1, 0.01))
    ]
    module = StackedClassifier.from_configs(cfgs)
    data = StackDataModule.from_configs(cfgs)
    trainer = notebook_trainer(10)
    trainer.fit(module, datamodule=data)
    assert module.configure_optimizers().lr == pytest.approx([0.1, 0.01])
    (tested,) = trainer.test(module, datamodule=data, verbose=False)
    assert set(tested) == {f"test/{m}/member{k}" for m in ("error", "loss") for k in (0, 1)}


def test_a_runs_member_checkpoint_loads_as_a_lightning_module(tmp_path):
    """``last.ckpt`` of a reglab run (checkpoint.keep) is a Lightning checkpoint of a stack
    of one: it loads with its hyperparameters, and its net is the run's ``model.pt``."""
    run_dir = tmp_path / "run"
    overrides = ("model.batchnorm=true", "dropout=standard", "trainer.max_steps=20")
    cfg = compose_config(*SMALL, *overrides, "checkpoint.keep=true")
    (summary,) = run_stack([Job(cfg, run_dir)])
    assert summary["status"] == "completed", summary.get("error")
    module = StackedClassifier.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert module.num_members == 1
    assert module.hparams.configs[0]["model"] == summary["config"]["model"]
    saved = torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]
    state = module.net.member_state_dict(0)
    assert state.keys() == saved.keys()
    assert all(torch.equal(state[k], saved[k]) for k in saved), "the run's final weights"
    assert module.net.body.bn1.num_batches_tracked.tolist() == [20]
    model, _ = reglab.load_model(run_dir)
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module.net.eval()(x[None])[0], model(x), atol=1e-5, rtol=0)
    assert isinstance(module.configure_optimizers(), torch.optim.Optimizer)
