"""Convolutional nets: conv blocks with optional batchnorm and spatial dropout, FC head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from reglab.models.blocks import LayerStack, dense_blocks, hidden_block, input_dropout
from reglab.models.dropout import DropoutSpec


class CNN(LayerStack):
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
        layers: list[tuple[str, nn.Module]] = list(input_dropout(spec))
        c_in = int(input_shape[0])
        for index, c_out in enumerate(map(int, channels), start=1):
            conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)
            layers += hidden_block(
                index,
                conv,
                c_out,
                activation,
                batchnorm,
                spec,
                conv=True,
                pool=pool,
            )
            c_in = c_out
        layers.append(("flatten", nn.Flatten()))
        with torch.no_grad():  # the flattened feature size, from one dummy image
            probe = nn.Sequential(OrderedDict(layers)).eval()
            features = probe(torch.zeros(1, *input_shape))
            probe.train()  # the layers stay in training mode (batchnorm, dropout)
        layers += dense_blocks(
            features.shape[1],
            fc,
            num_classes,
            len(channels) + 1,
            activation,
            batchnorm,
            spec,
        )
        super().__init__(layers, seed, init_std)
