"""reglab.dotted: the one home of dotted keys (``"a.b"``) on nested configs, and what each of
its users relied on when it had a copy of its own (loggers' hyperparameters, the rerun
guard, the report's columns, the stack key, validation of ``+`` keys)."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig, OmegaConf

from reglab import dotted, rerun, stacking

TREE = {"a": {"b": 1, "c": {}}, "d": [1, {"x": 2}], "e": None, "f": {"g": {"h": "x"}}}


def test_flatten_drops_empty_mappings_unless_asked_and_keeps_lists_as_values() -> None:
    assert dotted.flatten(TREE) == {"a.b": 1, "d": [1, {"x": 2}], "e": None, "f.g.h": "x"}
    kept = dotted.flatten(TREE, keep_empty=True)
    assert kept == {"a.b": 1, "a.c": {}, "d": [1, {"x": 2}], "e": None, "f.g.h": "x"}
    assert dotted.flatten({}) == {} == dotted.flatten(None) == dotted.flatten({}, keep_empty=True)


def test_leaves_name_the_root_by_prefix() -> None:
    assert list(dotted.leaves(3, "x")) == [("x", 3)]
    assert list(dotted.leaves({}, "x")) == []
    assert list(dotted.leaves({}, "x", keep_empty=True)) == [("x", {})]
    assert list(dotted.leaves({"b": {"c": 1}}, "a")) == [("a.b.c", 1)]


def test_a_dictconfig_is_walked_unresolved() -> None:
    """Validation walks the composed config before Hydra's runtime exists: an
    interpolation only it resolves must not raise; None and empty nodes are leaves."""
    cfg = OmegaConf.create({"a": {"b": "${hydra:runtime.output_dir}", "c": {}}, "n": None})
    keys = [k for k, _ in dotted.leaves(cfg, "", keep_empty=True)]
    assert keys == ["a.b", "a.c", "n"]
    assert [k for k, _ in dotted.leaves(dotted.node(cfg, "a.c"), "a.c", keep_empty=True)] == ["a.c"]
    assert isinstance(dotted.node(cfg, "a"), DictConfig) and dotted.node(cfg, "") is cfg
    assert dotted.node(cfg, "a.zz") is None and dotted.node(cfg, "a.b.c") is None


def test_get_put_pop() -> None:
    tree = {"a": {"b": 1}, "l": [1]}
    assert dotted.get(tree, "a.b") == 1 and dotted.get(tree, "a.x", 5) == 5
    assert dotted.get(tree, "l.0", "no") == "no"  # lists are values, never walked
    assert dotted.get(None, "a") is None and dotted.get(tree, "a.b.c", dotted.MISSING) is (
        dotted.MISSING
    )
    dotted.put(tree, "a.c.d", 2)
    dotted.put(tree, "a.b.x", 3)  # a value on the way becomes a mapping
    assert tree["a"] == {"b": {"x": 3}, "c": {"d": 2}}
    assert dotted.pop(tree, "a.c.d") == 2 and tree["a"]["c"] == {}
    assert dotted.pop(tree, "q.r", "absent") == "absent" and dotted.pop(tree, "l.0") is None
    assert dotted.pop(tree, "l") == [1] and "l" not in tree


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ({"a": {"b": 1}}, {"a": {"b": 2}}, ["a.b: 1 → 2"]),
        ({"a": {}}, {}, []),  # an empty group has no settings
        ({"a": [1, 2]}, {"a": [1, 3]}, ["a: [1, 2] → [1, 3]"]),
        ({}, {"x": {"y": None}}, []),  # a new key, null: absent before
    ],
)
def test_the_rerun_guard_compares_leaves(old, new, changed) -> None:
    assert rerun.changed_settings(old, new) == changed


def test_the_stack_key_drops_stackable_keys_and_keeps_must_match_ones() -> None:
    base = {"seed": 0, "optimizer": {"lr": 0.1, "_target_": "torch.optim.SGD"}, "model": {}}
    other = {"seed": 1, "optimizer": {"lr": 0.5, "_target_": "torch.optim.SGD"}, "model": {}}
    assert stacking.stack_key(base) == stacking.stack_key(other)
    checkpoint = base | {"checkpoint": {"keep": True}}  # neutral, but must match in a stack
    assert stacking.stack_key(checkpoint) != stacking.stack_key(base)
    numbers = {"regularizer": {"lam": 1.0, "include_biases": False, "_target_": "L2"}}
    stacking._pop_numbers(numbers, "regularizer", stacking.REGULARIZER_SELECTION)
    assert numbers == {"regularizer": {"include_biases": False, "_target_": "L2"}}


def test_the_report_reads_dotted_values() -> None:
    import pandas as pd

    from reglab.report.sweeps import column

    runs = pd.DataFrame({"config": [{"model": {"hidden": [3]}}, None, {"model": 1}]})
    assert list(column(runs, "model.hidden", "-")) == [[3], "-", "-"]
