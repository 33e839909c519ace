"""Pieces shared by the MLP and the CNN: activations, hidden blocks, initialisation."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from reglab.models.dropout import DropoutSpec, MaskSource, RetentionDropout

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
    p_retain: float,
    masks: MaskSource,
    spec: DropoutSpec,
    conv: bool = False,
    pool: int = 1,
) -> Iterator[tuple[str, nn.Module]]:
    """Named layers of one hidden block: affine map, [BN], activation, [pool], dropout.

    Batchnorm sits between the affine map and the nonlinearity, as in Ioffe & Szegedy
    (2015) §3.2 ("we add the BN transform immediately before the nonlinearity").
    """
    yield f"{'conv' if conv else 'fc'}{index}", layer
    if batchnorm:
        yield f"bn{index}", (nn.BatchNorm2d if conv else nn.BatchNorm1d)(width)
    yield f"act{index}", activation(act)
    if pool > 1:
        yield f"pool{index}", nn.MaxPool2d(pool)
    if p_retain < 1.0:
        spatial = conv and spec.spatial
        yield f"drop{index}", RetentionDropout(p_retain, masks, spec.mode, spatial=spatial)


def input_dropout(masks: MaskSource, spec: DropoutSpec) -> Iterator[tuple[str, nn.Module]]:
    if spec.p_input < 1.0:
        yield "drop_in", RetentionDropout(spec.p_input, masks, spec.mode, spatial=False)


def init_normal_(model: nn.Module, std: float) -> None:
    """Gaussian N(0, std²) weights and zero biases ("small random Gaussian values")."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.normal_(layer.weight, 0.0, std)
            nn.init.zeros_(layer.bias)
