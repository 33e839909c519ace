"""Dropout with the paper's convention: ``p`` is the probability of *retaining* a unit.

Srivastava et al. (JMLR 2014) write p for the retention probability; PyTorch's
``nn.Dropout(p)`` takes the *drop* rate. reglab follows the paper everywhere, so
``p = 1.0`` means no dropout and ``p = 0.5`` keeps half the units.

Two test-time conventions, which agree in expectation (Srivastava §2, Fig. 2):

* ``inverted``: scale kept units by 1/p while training; the test-time net is unchanged.
* ``weight_scaling``: train unscaled; at test multiply each unit's outgoing weights by p.
  Scaling a unit's output by p is the same linear map as scaling its outgoing weights by
  p, so the layer multiplies its output by p at test time.

Masks come from the model's own :class:`MaskSource`, so a run's seed fixes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from reglab.seeding import Stream, generator

TestTimeMode = Literal["inverted", "weight_scaling"]


@dataclass(frozen=True)
class DropoutSpec:
    """Where and how to drop units; all probabilities are *retention* probabilities."""

    p_input: float = 1.0
    p_hidden: float = 1.0
    spatial: bool = True  # conv layers drop whole channels (Tompson et al. 2015)
    mode: TestTimeMode = "inverted"
    mc_samples: int = 0  # >0: also evaluate by averaging k stochastic passes (§7.5)


class MaskSource:
    """The dropout-mask random stream of one model, one generator per device."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = generator(self.seed, Stream.DROPOUT, device=device)
        return self._generators[key]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {key: gen.get_state() for key, gen in self._generators.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key, gen_state in state.items():
            self.generator(torch.device(key)).set_state(gen_state)


class RetentionDropout(nn.Module):
    """Dropout that keeps each unit (or channel) with probability ``p``.

    ``stochastic`` forces random masks outside training, for Monte-Carlo averaging.
    """

    def __init__(
        self,
        p: float,
        masks: MaskSource,
        mode: TestTimeMode = "inverted",
        spatial: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 < p <= 1.0:
            raise ValueError(f"retention probability p={p} must be in (0, 1]")
        self.p = float(p)
        self.mode = mode
        self.spatial = spatial
        self.masks = masks
        self.stochastic = False

    def extra_repr(self) -> str:
        return f"p_retain={self.p}, mode={self.mode}, spatial={self.spatial}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 1.0:
            return x
        if self.training or self.stochastic:
            shape = (*x.shape[:2], *([1] * (x.dim() - 2))) if self.spatial else x.shape
            mask = torch.empty(shape, dtype=x.dtype, device=x.device)
            mask.bernoulli_(self.p, generator=self.masks.generator(x.device))
            if self.mode == "inverted":
                mask.div_(self.p)
            return x * mask
        return x * self.p if self.mode == "weight_scaling" else x


def set_stochastic(model: nn.Module, stochastic: bool) -> None:
    """Switch every dropout layer of ``model`` to random masks at evaluation (MC dropout)."""
    for layer in model.modules():
        if isinstance(layer, RetentionDropout):
            layer.stochastic = stochastic
