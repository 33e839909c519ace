"""Each member of a stack is exactly its solo run (issue 14): K >= 4 members, for every
stackable key two members that differ only in it, against separate ``reglab-train`` runs
of the same configs (the CLI, in this process: inprocess.py; CPU, deterministic): final
test error within 0.02 points and every weight tensor within 1e-4 (‖a−b‖/‖b‖) after 200
steps. Batched kernels may sum
in another order, so bitwise equality is not asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import compose_config
from inprocess import run_main_ok

from reglab.member import Job
from reglab.run import run_stack

COMMON = [
    "data=digits",
    "model.hidden=[48,32]",
    "trainer.max_steps=200",
    "trainer.deterministic=true",
    "threads=1",
    "checkpoint.keep=true",
    "trainer.enable_progress_bar=false",
    "data.batch_size=64",
    "trainer.val_check_interval=100",
    "trainer.check_val_every_n_epoch=null",
]
# One stack per regularizer kind (its strengths stack, its kind does not).
STACKS = {
    "l1_proximal": {
        "base": [],
        "seed": ["seed=5"],
        "p_input": ["dropout.p_input=0.5"],
        "p_hidden": ["dropout.p_hidden=0.3"],
        "lam": ["regularizer.lam=3e-2"],  # exact zeros within 200 steps
        "lr": ["optimizer.lr=0.1"],
        "momentum": ["optimizer.momentum=0.5"],
        "train_size": ["data.train_size=640"],  # a multiple of the batch size
        "corruption": ["corruption=partial_labels", "corruption.q=0.6"],
    },
    "max_norm": {
        "base": [],
        "c": ["regularizer.c=0.3"],  # binding
        "random_labels": ["corruption=random_labels"],
    },
}
BASE = {
    "l1_proximal": ["regularizer=l1_proximal", "regularizer.lam=1e-4", "dropout=standard"],
    "max_norm": ["regularizer=max_norm", "regularizer.c=3.0"],
}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The member's solo weights in its Lightning-format ``last.ckpt``."""
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return saved["member"]["model"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(STACKS))
def test_every_member_of_a_stack_is_its_solo_run(tmp_path, data_dir, kind):
    members = STACKS[kind]
    overrides = {name: [*COMMON, *BASE[kind], *extra] for name, extra in members.items()}
    if kind == "l1_proximal":  # the digits' 1,437 images are not a multiple of 64: all subsets
        overrides = {
            n: o if "train_size" in n else [*o, "data.train_size=1280"]
            for n, o in overrides.items()
        }
    # the stack, in this process, in one order ...
    jobs = [Job(compose_config(*o), tmp_path / "stack" / n, o) for n, o in overrides.items()]
    summaries = run_stack(jobs)
    assert all(s["status"] == "completed" for s in summaries), [s.get("error") for s in summaries]
    assert {s["stack"]["size"] for s in summaries} == {len(jobs)}
    # ... and the same members as separate reglab-train runs
    solo = {n: run_main_ok(*o, run_dir=tmp_path / "solo" / n, cwd=tmp_path)
            for n, o in overrides.items()}  # fmt: skip
    for name, summary in zip(overrides, summaries, strict=True):
        alone = solo[name]
        assert summary["metrics"]["test_error"] == pytest.approx(
            alone["metrics"]["test_error"], abs=0.02
        ), name
        stacked, separate = _weights(tmp_path / "stack" / name), _weights(tmp_path / "solo" / name)
        for key, value in separate.items():
            assert _rel(stacked[key], value) < 1e-4, (name, key)
    # each pair really differs: far more than the tolerance
    base = _weights(tmp_path / "stack" / "base")
    for name in members:
        if name != "base":
            other = _weights(tmp_path / "stack" / name)
            assert max(_rel(other[k], base[k]) for k in base) > 100 * 1e-4, name
    if kind == "l1_proximal":
        assert summaries[list(members).index("lam")]["metrics"]["zero_weight_fraction"] > 0.05
    if kind == "max_norm":
        w = _weights(tmp_path / "stack" / "c")["fc1.weight"]
        assert w.norm(dim=1).max() == pytest.approx(0.3, rel=1e-3)  # the constraint binds


@pytest.mark.slow
def test_a_member_gets_the_same_result_at_another_position_and_in_another_stack(tmp_path, data_dir):
    names = {"a": ["seed=1"], "b": ["seed=2", "dropout.p_hidden=0.4"], "c": ["seed=3"]}
    common = [*COMMON, "trainer.max_steps=60", "dropout=hidden"]

    def stack(folder: str, order: list[str]) -> dict[str, dict]:
        jobs = [Job(compose_config(*common, *names[n]), tmp_path / folder / n) for n in order]
        return dict(zip(order, run_stack(jobs), strict=True))

    first, second, alone = (
        stack("one", ["a", "b", "c"]),
        stack("two", ["c", "b"]),
        stack("three", ["b"]),
    )
    errors = {
        first["b"]["metrics"]["test_error"],
        second["b"]["metrics"]["test_error"],
        alone["b"]["metrics"]["test_error"],
    }
    assert max(errors) - min(errors) <= 0.02
    w = [_weights(tmp_path / f / "b") for f in ("one", "two", "three")]
    for key in w[0]:
        assert _rel(w[1][key], w[0][key]) < 1e-5 and _rel(w[2][key], w[0][key]) < 1e-5
