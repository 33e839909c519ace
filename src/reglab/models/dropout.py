"""Dropout with the paper's convention: ``p`` is the probability of *retaining* a unit.

Srivastava et al. (JMLR 2014) write p for the retention probability; PyTorch's
``nn.Dropout(p)`` takes the *drop* rate. reglab follows the paper everywhere, so
``p = 1.0`` means no dropout and ``p = 0.5`` keeps half the units.

Two test-time conventions, which agree in expectation (Srivastava §2, Fig. 2):

* ``inverted``: scale kept units by 1/p while training; the test-time net is unchanged.
* ``weight_scaling``: train unscaled; at test multiply each unit's outgoing weights by p.
  Scaling a unit's output by p is the same linear map as scaling its outgoing weights by
  p, so the layer multiplies its output by p at test time.

Masks come from a counter-based integer hash, not from a random generator: whether
element e is kept is a pure function of (the model's mask seed, its mask counter, the
layer's salt, e),

    keep(e) = mix31(mix31(e) ^ mix31(mix31(seed ^ salt) + counter)) < p · 2³¹,

so a member of a stack draws the same masks as its solo run, whichever members share the
stack, on CPU and CUDA, and the layer runs under ``torch.func.vmap(randomness="error")``.
The counter is the model's optimizer step while training (each training forward adds 1,
so a solo model in any training loop draws new masks every step) and ``-(i + 1)`` for the
i-th Monte-Carlo pass of stochastic evaluation (§7.5); counters enter modulo 2³¹, so the
two ranges never meet. :func:`bind_dropout` gives every layer of a model its seed and a
salt from its qualified name, and turns a user's ``nn.Dropout`` / ``nn.Dropout2d`` into
this layer with retention 1 − p.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

TestTimeMode = Literal["inverted", "weight_scaling"]
M31 = 0x7FFF_FFFF  # hash states are 31-bit, so every product stays below 2**58
_MUL = 0x45D9F3B
_ELEMENT_HASH: dict[tuple[int, str], Tensor] = {}


@dataclass(frozen=True)
class DropoutSpec:
    """Where and how to drop units; all probabilities are *retention* probabilities."""

    p_input: float = 1.0
    p_hidden: float = 1.0
    spatial: bool = True  # conv layers drop whole channels (Tompson et al. 2015)
    mode: TestTimeMode = "inverted"
    mc_samples: int = 0  # >0: also evaluate by averaging k stochastic passes (§7.5)


def mix31(x: Tensor) -> Tensor:
    """A bijective integer hash of int64 values in [0, 2**31) onto [0, 2**31)."""
    x = (((x >> 16) ^ x) * _MUL) & M31
    x = (((x >> 16) ^ x) * _MUL) & M31
    return (x >> 16) ^ x


def _element_hash(numel: int, device: torch.device) -> Tensor:
    """mix31(0, 1, ..., numel - 1), cached per size and device."""
    if numel > M31:
        raise ValueError(f"{numel} elements per example batch exceed the 31-bit mask index")
    key = (numel, str(device))
    if key not in _ELEMENT_HASH:
        if len(_ELEMENT_HASH) > 64:
            _ELEMENT_HASH.clear()
        _ELEMENT_HASH[key] = mix31(torch.arange(numel, dtype=torch.int64, device=device))
    return _ELEMENT_HASH[key]


class RetentionDropout(nn.Module):
    """Dropout that keeps each unit (or, ``spatial``, each channel) with probability ``p``.

    ``p``, the mask ``seed`` and ``counter`` are buffers (not saved in a state_dict), so a
    stack holds one value per member. ``stochastic`` draws masks at evaluation too
    (Monte-Carlo averaging). ``all_retained`` skips the layer (p = 1 in every member).
    """

    def __init__(
        self, p: float, mode: TestTimeMode = "inverted", spatial: bool = False, salt: int = 0
    ) -> None:
        super().__init__()
        if not 0.0 < p <= 1.0:
            raise ValueError(f"retention probability p={p} must be in (0, 1]")
        if mode not in ("inverted", "weight_scaling"):
            raise ValueError(f"dropout mode={mode!r}: allowed are inverted, weight_scaling")
        self.mode, self.spatial, self.salt = mode, spatial, int(salt) & M31
        self.register_buffer("p", torch.tensor(float(p)), persistent=False)
        self.register_buffer("seed", torch.tensor(0, dtype=torch.int64), persistent=False)
        self.register_buffer("counter", torch.tensor(0, dtype=torch.int64), persistent=False)
        self.stochastic = False
        self.all_retained = p == 1.0

    def extra_repr(self) -> str:
        p = float(self.p) if self.p.device.type != "meta" and self.p.dim() == 0 else "…"
        return f"p_retain={p}, mode={self.mode}, spatial={self.spatial}"

    def keep_mask(self, shape: torch.Size, device: torch.device) -> Tensor:
        """Boolean keep-mask for activations of ``shape`` (N, C, ...), broadcastable."""
        mask_shape = (*shape[:2], *[1] * (len(shape) - 2)) if self.spatial else tuple(shape)
        numel = 1
        for n in mask_shape:
            numel *= n
        key = mix31((mix31(self.seed ^ self.salt) + (self.counter & M31)) & M31)
        h = mix31(_element_hash(numel, device) ^ key)
        threshold = torch.floor(self.p.double() * 2.0**31).long()  # p = 1 keeps every h
        return (h < threshold).view(mask_shape)

    def forward(self, x: Tensor) -> Tensor:
        if self.all_retained:
            return x
        if not (self.training or self.stochastic):
            return x * self.p.to(x.dtype) if self.mode == "weight_scaling" else x
        mask = self.keep_mask(x.shape, x.device).to(x.dtype)
        if self.training:
            self.counter.add_(1)  # the next step's masks (a stack sets counters itself)
        p = self.p.to(x.dtype)
        return x * (mask / p if self.mode == "inverted" else mask)


def dropout_layers(model: nn.Module) -> list[tuple[str, RetentionDropout]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, RetentionDropout)]


def bind_dropout(model: nn.Module, seed: int) -> nn.Module:
    """Give ``model``'s dropout its mask seed and per-layer salts (crc32 of the layer's
    qualified name); a user's ``nn.Dropout(p)`` / ``nn.Dropout2d(p)`` becomes a
    :class:`RetentionDropout` keeping units with probability 1 − p (whole channels for
    Dropout2d). Returns ``model``, changed in place."""
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d):
                if child.p >= 1.0:
                    raise ValueError(f"{parent_name}.{name}: nn.Dropout(p=1) drops every unit")
                spatial = not isinstance(child, nn.Dropout)
                setattr(parent, name, RetentionDropout(1.0 - child.p, spatial=spatial))
    for name, layer in dropout_layers(model):
        layer.salt = zlib.crc32(name.encode()) & M31
        layer.seed.fill_(int(seed) & M31)
    return model


def set_stochastic(model: nn.Module, stochastic: bool) -> None:
    """Switch every dropout layer of ``model`` to random masks at evaluation (MC dropout)."""
    for _, layer in dropout_layers(model):
        layer.stochastic = stochastic


def set_mask_counter(model: nn.Module, counter: int) -> None:
    """Every dropout layer's mask counter (e.g. ``-(i + 1)`` for the i-th MC pass)."""
    for _, layer in dropout_layers(model):
        layer.counter.fill_(counter)
