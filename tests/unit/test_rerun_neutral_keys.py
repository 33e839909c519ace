"""One list of result-neutral keys (:data:`reglab.rerun.HOW_KEYS`): the sweep's job folder
names (conf/config.yaml's exclude_keys), the rerun guard, the stacked launcher, the report
and the test fixtures all use it."""

from __future__ import annotations

import yaml
from conftest import CONF
from report_fixtures import job_dirname

from reglab import rerun, stacking
from reglab.jobs import NEUTRAL_KEYS, dirname_excluded
from reglab.report import sweeps
from reglab.resolvers import compose


def test_exclude_keys_of_config_yaml_read_the_how_keys() -> None:
    """conf/config.yaml reads the one list through a resolver; nothing else lists keys."""
    config = yaml.safe_load((CONF / "config.yaml").read_text(encoding="utf-8"))
    exclude = config["hydra"]["job"]["config"]["override_dirname"]["exclude_keys"]
    assert exclude == NEUTRAL_KEYS == "${reglab.neutral_keys:}"
    assert len(rerun.HOW_KEYS) == len(set(rerun.HOW_KEYS)), "a key listed twice"
    composed = compose(["seed=1", "threads=2", "compile=true"], hydra=True)
    assert list(composed.hydra.job.config.override_dirname.exclude_keys) == list(rerun.HOW_KEYS)
    assert composed.hydra.job.override_dirname == "seed=1"  # Hydra's own name uses it too


def test_a_sweep_recorded_with_the_resolver_excludes_the_how_keys() -> None:
    """multirun.yaml records exclude_keys unresolved; the report and the sweep's summary
    read it as the list (a list recorded by an earlier release still counts as written)."""
    recorded = {"hydra": {"job": {"config": {"override_dirname": {"exclude_keys": NEUTRAL_KEYS}}}}}
    assert dirname_excluded(recorded) == frozenset(rerun.HOW_KEYS)
    listed = {"hydra": {"job": {"config": {"override_dirname": {"exclude_keys": ["seed"]}}}}}
    assert dirname_excluded(listed) == frozenset({"seed"})


def test_the_report_and_the_fixtures_use_the_list() -> None:
    overrides = [
        "name=x",
        "experiment=x",
        "launcher.n_jobs=2",
        "compile=true",
        "seed=1",
        "checkpoint.every_n_steps=10",
        "trainer=gpu",
        "dropout.p_hidden=0.5",
        "+meta.note=hi",  # keys below a listed one: the same prefix rule as folder names
        "paths.data_dir=/a",
        "logger.wandb.project=p",
        "trainer.max_steps=5",  # a choice-only group's own keys change the result
    ]
    kept = "seed=1,dropout.p_hidden=0.5,trainer.max_steps=5"
    assert sweeps.short_overrides(overrides) == kept
    assert job_dirname(overrides) == "dropout.p_hidden=0.5,seed=1,trainer.max_steps=5"
    assert sweeps.computed_overrides(overrides) == {
        "seed": "1",
        "dropout.p_hidden": "0.5",
        "trainer.max_steps": "5",
    }


def test_a_choice_only_group_keeps_its_result_keys() -> None:
    """trainer=gpu names the same job, but trainer.max_steps changes what it computes."""
    old = {"trainer": {"max_steps": 100, "accelerator": "cpu"}, "checkpoint": {"keep": False}}
    new = {"trainer": {"max_steps": 200, "accelerator": "gpu"}, "checkpoint": {"keep": True}}
    assert rerun.changed_settings(old, new) == ["trainer.max_steps: 100 → 200"]
    assert rerun.is_how_key("trainer.accelerator") and not rerun.is_how_key("trainer.max_steps")
    base = {"seed": 0, "trainer": {"max_steps": 100, "accelerator": "cpu"}, "threads": 1}
    assert stacking.stack_key(base) == stacking.stack_key(base | {"threads": 4})
    assert stacking.stack_key(base) != stacking.stack_key(
        base | {"trainer": {"max_steps": 200, "accelerator": "cpu"}}
    )


def test_an_excluded_key_covers_the_keys_below_it_except_a_choice_only_group() -> None:
    """conf/config.yaml names job folders with reglab.jobs.job_dirname: ``+meta.note=x``
    and ``paths.log_dir=...`` name no folder, ``trainer.max_steps`` does, ``trainer=gpu``
    does not; ``model.hidden`` is not below ``model.h``."""
    from reglab.jobs import job_dirname

    overrides = ["+meta.note=x", "meta.tags=[a]", "launcher.foo=1", "trainer=gpu",
                 "trainer.max_steps=5", "seed=1", "scale=quick", "model.hidden=[3]"]  # fmt: skip
    assert job_dirname(overrides, rerun.HOW_KEYS) == "model.hidden=[3],seed=1,trainer.max_steps=5"
    assert job_dirname(overrides, ["model.h"]) == ",".join(sorted(overrides))
