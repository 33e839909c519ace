"""Stacked training's planning (reglab.stacking): which jobs share a stack, what a member
costs, how a sweep is cut into stacks, checked on every experiment's real sweep."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from reglab import dotted, stacking

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

# -- helpers -------------------------------------------------------------------------------


def _resolved(cfg, out_dir: str = "job") -> dict:
    """A composed config resolved as in a job; loggers' ${hydra:...} paths → ``out_dir``."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)
        for node in (cfg.get("logger") or {}).values():
            for key in list(node):
                if "${hydra:" in str(OmegaConf.to_container(node, resolve=False)[key]):
                    node[key] = out_dir
    return OmegaConf.to_container(cfg, resolve=True)


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _set(tree: dict, key: str, value: Any) -> dict:
    dotted.put(tree, key, value)
    return tree


def _sweep_points(experiment: str, scale: str) -> list[dict]:
    """Every job of the experiment's sweep, resolved. Group values are composed (once per
    combination), key values set on the composed config, as tests/e2e/test_sweeps.py does."""
    base = [f"experiment={experiment}", f"scale={scale}"]
    parser = OverridesParser.create()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        full = compose("config", overrides=base, return_hydra_config=True)
        params = OmegaConf.to_container(full.hydra.sweeper.params, resolve=True)
        parsed = parser.parse_overrides([f"{k}={v}" for k, v in params.items()])
        points = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
        composed: dict[tuple[str, ...], Any] = {}
        configs = []
        for n, point in enumerate(points):
            overrides = parser.parse_overrides(point)
            groups = tuple(o.input_line for o in overrides if (CONF / o.key_or_group).is_dir())
            if groups not in composed:
                composed[groups] = compose("config", overrides=[*base, *groups])
            cfg = composed[groups].copy()
            for o in overrides:
                if not (CONF / o.key_or_group).is_dir():
                    OmegaConf.update(cfg, o.key_or_group, o.value(), merge=False)
            configs.append(_resolved(cfg, f"job{n}"))
    return configs


# -- stack keys ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def penalties() -> dict:
    return _resolved(_compose("experiment=penalties", "scale=quick"))


NOT_STACKABLE = [
    ("model.hidden", [64]),
    ("trainer.max_steps", 123),
    ("data.batch_size", 50),
    ("dropout.mode", "weight_scaling"),
    ("trainer.precision", "bf16-mixed"),
    ("data.eval_batch_size", 500),
    ("checkpoint.every_n_steps", 7),
    ("probe_size", 10),
    # result-neutral, but a stack has one Trainer: one progress bar (stacking.MUST_MATCH)
    ("trainer.enable_progress_bar", True),
]
NOT_STACKABLE_GROUPS = ["optimizer=adam", "regularizer=l2", "scheduler=step", "logger=many"]


@pytest.mark.parametrize("key, value", NOT_STACKABLE)
def test_a_non_stackable_key_makes_another_stack(penalties, key, value):
    other = _set(json.loads(json.dumps(penalties)), key, value)
    assert stacking.stack_key(other) != stacking.stack_key(penalties)
    assert len(stacking.plan_stacks([penalties, other], 64, None)) == 2


@pytest.mark.parametrize("group", NOT_STACKABLE_GROUPS)
def test_a_non_stackable_group_makes_another_stack(penalties, group):
    other = _resolved(_compose("experiment=penalties", "scale=quick", group))
    assert stacking.stack_key(other) != stacking.stack_key(penalties)


STACKABLE = [
    ("seed", 7),
    ("dropout.p_input", 0.8),
    ("dropout.p_hidden", 0.5),
    ("regularizer.lam", 0.5),
    ("regularizer.c", 3.0),
    ("data.train_size", 500),
    ("optimizer.lr", 0.5),
    ("optimizer.momentum", 0.5),
    ("optimizer.weight_decay", 0.1),
    ("meta", {"note": "a user's note"}),
    # result-neutral: where and how a job runs, and the job's own folder
    ("threads", 3),
    ("name", "other"),
    ("paths.log_dir", "/elsewhere"),
    ("data.root", "/data/elsewhere"),
    ("logger.csv.save_dir", "/another/job"),
]


@pytest.mark.parametrize("key, value", STACKABLE)
def test_a_stackable_or_neutral_key_shares_the_stack(penalties, key, value):
    other = _set(json.loads(json.dumps(penalties)), key, value)
    assert stacking.stack_key(other) == stacking.stack_key(penalties)


def test_corruption_and_adam_betas_stack():
    base = _resolved(_compose("optimizer=adam"))
    for other in (
        _resolved(_compose("optimizer=adam", "corruption=random_labels")),
        _resolved(_compose("optimizer=adam", "corruption=gaussian")),
        _resolved(_compose("optimizer=adam", "optimizer.betas=[0.5,0.9]")),
    ):
        assert stacking.stack_key(other) == stacking.stack_key(base)


# -- memory and plans ----------------------------------------------------------------------


def test_estimate_counts_the_models_parameters():
    import torch

    from reglab.models import CNN, MLP

    cases = [
        (("model.hidden=[100,50]",), MLP, (1, 28, 28)),
        (("model=small_alexnet", "data=cifar10", "data.crop=28"), CNN, (3, 28, 28)),
    ]
    for overrides, cls, shape in cases:
        config = _resolved(_compose(*overrides))
        params, _ = stacking._layers(config)
        model_cfg = {k: v for k, v in config["model"].items() if k != "_target_"}
        model = cls(input_shape=shape, num_classes=10, **model_cfg)
        assert params == sum(p.numel() for p in model.parameters()), overrides
        assert isinstance(model, torch.nn.Module)
    base = _resolved(_compose())
    est = stacking.estimate_bytes
    assert est(_resolved(_compose("optimizer=adam"))) > est(base)
    assert est(_resolved(_compose("model.hidden=[2048,2048]"))) > est(base)
    random_pixels = _resolved(_compose("corruption=random_pixels"))
    assert est(base) < est(random_pixels) < est(_resolved(_compose("corruption=gaussian")))
    assert est(_resolved(_compose("data.train_size=1000"))) < est(base)


def test_plan_respects_max_members_and_memory(penalties):
    configs = [_set(json.loads(json.dumps(penalties)), "seed", s) for s in range(10)]
    stacks = stacking.plan_stacks(configs, max_members=4, memory_bytes=None)
    assert [len(s) for s in stacks] == [3, 4, 3]  # as few as max_members allows, even
    assert [i for s in stacks for i in s] == list(range(10))  # sweep order
    one, shared = stacking.estimate_bytes(penalties), stacking.estimate_shared_bytes(penalties)
    budget = shared + 3 * one + one // 2
    stacks = stacking.plan_stacks(configs, max_members=64, memory_bytes=budget)
    assert len(stacks) == 4 and max(map(len, stacks)) == 3
    assert all(stacking.stack_bytes([configs[i] for i in s]) <= budget for s in stacks)
    assert stacking.plan_stacks(configs, 64, memory_bytes=1) == [[i] for i in range(10)]
    # two kinds of job, interleaved: grouped, each group in sweep order
    mixed = [_set(c, "model.hidden", [64]) if i % 2 else c for i, c in enumerate(configs)]
    assert stacking.plan_stacks(mixed, 64, None) == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]


def test_plan_halves_stacks_while_that_shortens_the_sweep(penalties):
    """One stack per process at least, and no process idle while another trains a second
    stack: the largest stack is halved while the makespan (costliest first) falls."""
    configs = [_set(json.loads(json.dumps(penalties)), "seed", s) for s in range(10)]
    assert stacking.plan_stacks(configs, 64, None, workers=2) == [  # every other member
        [0, 2, 4, 6, 8],
        [1, 3, 5, 7, 9],
    ]
    stacks = stacking.plan_stacks(configs, 64, None, workers=3)
    assert [len(s) for s in stacks] == [3, 2, 3, 2]  # 3 | 3 | 2 + 2: 4 updates-worth, not 5
    assert sorted(i for s in stacks for i in s) == list(range(10))
    assert len(stacking.plan_stacks(configs[:2], 64, None, workers=4)) == 2  # one each
    # three groups of 10 (penalties' regularizer kinds) on 2 processes: 10, 10, 5, 5
    kinds = [
        _set(json.loads(json.dumps(c)), "regularizer._target_", f"reglab.regularizers.{k}")
        for k in ("L1", "L2", "L1Proximal")
        for c in configs
    ]
    assert sorted(len(s) for s in stacking.plan_stacks(kinds, 64, None, workers=2)) == [
        5,
        5,
        10,
        10,
    ]
    assert stacking.makespan([10, 10, 5, 5], 2) == 15 < stacking.makespan([10, 10, 10], 2) == 20
    # a member with twice the updates costs twice: 1 long + 2 short on 2 processes stay as they are
    long = _set(
        json.loads(json.dumps(configs[0])),
        "trainer.max_steps",
        2 * configs[0]["trainer"]["max_steps"],
    )
    assert stacking.member_work(long) == 2 * stacking.member_work(configs[0])


# Stacks per experiment at quick scale: the grid axes that need stacks of their own.
QUICK_STACKS = {
    "penalties": 3,  # regularizer kind; λ and seed stack
    "dropout_rate_fixed_n": 1,  # p and seed stack
    "dropout_rate_fixed_pn": 10,  # widths differ with p
    "label_corruption": 1,  # q, the arm's p and λ, seed stack
    "randomization": 1,  # every corruption stacks
    "batchnorm": 2,  # model.batchnorm
    "architectures": 6,  # six architectures; dropout and seed stack
    # regularizer kind × strength (its selector is not a stackable key); the dropout and
    # plain arms of one kind and their seeds stack
    "regularizer_comparison": 9,
}


@pytest.mark.parametrize("scale", ["quick", "paper"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_plans_into_stacks(experiment, scale):
    configs = _sweep_points(experiment, scale)
    stacks = stacking.plan_stacks(configs, max_members=64, memory_bytes=None)
    sizes = [len(s) for s in stacks]
    estimate = max(stacking.stack_bytes([configs[i] for i in s]) for s in stacks)
    print(
        f"{experiment}/{scale}: {len(configs)} jobs → stacks {sizes}, largest ~"
        f"{stacking.format_bytes(estimate)}"
    )
    assert sorted(i for s in stacks for i in s) == list(range(len(configs)))
    for stack in stacks:
        assert len({stacking.stack_key(configs[i]) for i in stack}) == 1
    assert len(stacks) < len(configs)  # every experiment stacks something
    if scale == "quick" and experiment in QUICK_STACKS:
        assert len(stacks) == QUICK_STACKS[experiment]
