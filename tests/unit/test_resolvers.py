"""reglab.resolvers: what composes a config registers reglab's OmegaConf resolvers first.
(That ``import reglab`` registers nothing, in a fresh interpreter: tests/e2e/test_import.py.)"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from reglab import rerun, resolvers


def test_register_is_idempotent_and_the_resolvers_resolve() -> None:
    resolvers.register()
    resolvers.register()
    cfg = OmegaConf.create(
        {"n": "${reglab.updates_for:1000,100,2,5}", "keys": "${reglab.neutral_keys:}"}
    )
    assert cfg.n == 20 and list(cfg["keys"]) == list(rerun.HOW_KEYS)
    assert resolvers.updates_for(1000, 100, 50, 3000, 400) == 400
    with pytest.raises(ValueError, match=r"data\.train_size is null"):
        resolvers.updates_for(None, 100, 1, 1)


def test_compose_composes_as_reglab_train_does() -> None:
    cfg = resolvers.compose(["experiment=data_size", "scale=quick", "data.train_size=1000"])
    assert cfg.trainer.max_steps == 3000  # ${reglab.updates_for:...}: at least 3,000
    assert "hydra" not in cfg and "hydra" in resolvers.compose(hydra=True)
