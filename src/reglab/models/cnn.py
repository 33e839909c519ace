"""Convolutional nets: conv blocks with optional batchnorm and spatial dropout, FC head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from reglab.models.blocks import hidden_block, init_normal_, input_dropout
from reglab.models.dropout import DropoutSpec, MaskSource


class CNN(nn.Sequential):
    """[dropout] → (conv → [BN] → act → pool → [dropout]) × blocks → flatten → FC head → linear.

    Convolutional dropout drops whole channels when ``dropout.spatial`` is true, because
    neighbouring pixels of one feature map are strongly correlated and per-pixel masks
    barely regularize them (Tompson et al. 2015); the FC head uses standard dropout.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int],
        kernel_size: int = 5,
        pool: int = 2,
        fc: Sequence[int] = (),
        activation: str = "relu",
        batchnorm: bool = False,
        init_std: float | None = None,
        dropout: DropoutSpec | None = None,
        seed: int = 0,
    ) -> None:
        spec = dropout or DropoutSpec()
        masks = MaskSource(seed)
        layers: list[tuple[str, nn.Module]] = list(input_dropout(masks, spec))
        c_in = int(input_shape[0])
        for index, c_out in enumerate(channels, start=1):
            conv = nn.Conv2d(c_in, int(c_out), kernel_size, padding=kernel_size // 2)
            layers += hidden_block(
                index,
                conv,
                int(c_out),
                activation,
                batchnorm,
                spec.p_hidden,
                masks,
                spec,
                conv=True,
                pool=pool,
            )
            c_in = int(c_out)
        layers.append(("flatten", nn.Flatten()))
        with torch.no_grad():
            width_in = (
                nn.Sequential(OrderedDict(layers)).eval()(torch.zeros(1, *input_shape)).shape[1]
            )
        for index, width in enumerate(fc, start=len(channels) + 1):
            linear = nn.Linear(width_in, int(width))
            layers += hidden_block(
                index, linear, int(width), activation, batchnorm, spec.p_hidden, masks, spec
            )
            width_in = int(width)
        layers.append(("out", nn.Linear(width_in, num_classes)))
        super().__init__(OrderedDict(layers))
        self.masks = masks
        if init_std is not None:
            init_normal_(self, init_std)
