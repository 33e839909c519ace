"""reglab.validation: checks done once, where both the config check and the engine use them."""

from __future__ import annotations

import pytest
from conftest import compose_config

from reglab.validation import ConfigError, check_optimizer, validate


def test_one_optimizer_check_for_the_config_and_the_engine() -> None:
    cfg = compose_config("optimizer._target_=torch.optim.RMSprop")
    message = "optimizer._target_=torch.optim.RMSprop: allowed are torch.optim.SGD, "
    with pytest.raises(ConfigError, match=message) as checked:
        validate(cfg)
    from reglab.classifier import member_optimizer

    with pytest.raises(ConfigError) as built:
        member_optimizer([cfg], [])
    assert str(built.value) == str(checked.value)
    check_optimizer("torch.optim.AdamW")
