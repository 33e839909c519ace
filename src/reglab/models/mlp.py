"""Fully connected nets: Srivastava et al. 2014, Zhang et al. 2017, Ioffe & Szegedy 2015."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from math import prod

from torch import nn

from reglab.models.blocks import hidden_block, init_normal_, input_dropout
from reglab.models.dropout import DropoutSpec, MaskSource


class MLP(nn.Sequential):
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
        masks = MaskSource(seed)
        layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        layers += input_dropout(masks, spec)
        width_in = prod(input_shape)
        for i, width in enumerate(hidden, start=1):
            linear = nn.Linear(width_in, int(width))
            layers += hidden_block(
                i, linear, int(width), activation, batchnorm, spec.p_hidden, masks, spec
            )
            width_in = int(width)
        layers.append(("out", nn.Linear(width_in, num_classes)))
        super().__init__(OrderedDict(layers))
        self.masks = masks
        if init_std is not None:
            init_normal_(self, init_std)
