"""Fully connected nets: Srivastava et al. 2014, Zhang et al. 2017, Ioffe & Szegedy 2015."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from torch import nn

from reglab.models.blocks import LayerStack, dense_blocks, input_dropout
from reglab.models.dropout import DropoutSpec


class MLP(LayerStack):
    """input → [dropout] → (linear → [BN] → activation → [dropout]) × len(hidden) → linear.

    ``input_shape`` and ``num_classes`` come from the data, never from the model's config.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int],
        activation: str = "relu",
        batchnorm: bool = False,
        init_std: float | None = None,
        dropout: DropoutSpec | None = None,
        seed: int = 0,
    ) -> None:
        spec = dropout or DropoutSpec()
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        layers += input_dropout(spec)
        layers += dense_blocks(
            prod(input_shape), hidden, num_classes, 1, activation, batchnorm, spec
        )
        super().__init__(layers, seed, init_std)
