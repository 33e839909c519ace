"""Pieces shared by the MLP and the CNN: activations, hidden blocks, initialisation."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence

from torch import nn

from reglab.models.dropout import DropoutSpec, RetentionDropout, bind_dropout
from reglab.seeding import Stream, stream_seed

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r}: allowed are {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def hidden_block(
    index: int,
    layer: nn.Module,
    width: int,
    act: str,
    batchnorm: bool,
    spec: DropoutSpec,
    conv: bool = False,
    pool: int = 1,
) -> Iterator[tuple[str, nn.Module]]:
    """Named layers of one hidden block: affine map, [BN], activation, [pool], dropout.

    The dropout layer is there whatever its p (p = 1 keeps every unit and is skipped), so
    a dropout-rate sweep's nets share one architecture and stack together.

    Batchnorm sits between the affine map and the nonlinearity, as in Ioffe & Szegedy
    (2015) §3.2 ("we add the BN transform immediately before the nonlinearity").
    """
    yield f"{'conv' if conv else 'fc'}{index}", layer
    if batchnorm:
        yield f"bn{index}", (nn.BatchNorm2d if conv else nn.BatchNorm1d)(width)
    yield f"act{index}", activation(act)
    if pool > 1:
        yield f"pool{index}", nn.MaxPool2d(pool)
    # the retention probability of hidden units (Srivastava et al.)
    yield f"drop{index}", RetentionDropout(spec.p_hidden, spec.mode, spatial=conv and spec.spatial)


def input_dropout(spec: DropoutSpec) -> Iterator[tuple[str, nn.Module]]:
    yield "drop_in", RetentionDropout(spec.p_input, spec.mode, spatial=False)


def init_normal_(model: nn.Module, std: float) -> None:
    """Gaussian N(0, std²) weights and zero biases ("small random Gaussian values")."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.normal_(layer.weight, 0.0, std)
            nn.init.zeros_(layer.bias)


def dense_blocks(
    width_in: int,
    widths: Sequence[int],
    num_classes: int,
    first_index: int,
    act: str,
    batchnorm: bool,
    spec: DropoutSpec,
) -> list[tuple[str, nn.Module]]:
    """Fully connected hidden blocks of the given widths, then the linear output layer."""
    layers: list[tuple[str, nn.Module]] = []
    for index, width in enumerate(map(int, widths), start=first_index):
        linear = nn.Linear(width_in, width)
        layers += hidden_block(index, linear, width, act, batchnorm, spec)
        width_in = width
    layers.append(("out", nn.Linear(width_in, num_classes)))
    return layers


class LayerStack(nn.Sequential):
    """Named layers in order; dropout masks from the run's seed (its own stream)."""

    def __init__(
        self, layers: list[tuple[str, nn.Module]], seed: int, init_std: float | None
    ) -> None:
        super().__init__(OrderedDict(layers))
        bind_dropout(self, stream_seed(seed, Stream.DROPOUT))
        if init_std is not None:
            init_normal_(self, init_std)
