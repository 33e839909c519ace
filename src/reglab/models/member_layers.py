"""The member layers of a :class:`~reglab.models.stack.MemberNet`: each holds K members'
weights with a leading member axis and applies member k's to slice k of its input.

* linear layers are batched matrix products, conv layers grouped convolutions (groups=K);
* batchnorm moves the member axis into the channels, so each member normalizes with its
  own batch statistics and keeps its own running averages (Ioffe & Szegedy 2015);
* dropout keeps a unit with the *retention* probability p of Srivastava et al. (2014),
  one p per member. Masks come from a counter-based integer hash, not from a torch
  generator: whether element e of a member is kept is a pure function of (the member's
  mask seed, its mask counter, the layer's name, e). A member's masks are therefore the
  same whichever members share the stack, at any position, on CPU and on CUDA:
  keep(e) = mix31(mix31(e) ^ mix31(mix31(seed ^ salt) + counter)) < p * 2**31.

Mask counters. ``MemberNet.mask_counter`` (K,) is set by the caller before a forward
pass: to each member's own optimizer step number while training (0 <= step < 2**30), and
to ``-(sample_index + 1)`` for the Monte-Carlo passes of stochastic evaluation. Counters
enter the hash modulo 2**31, so the negative MC range (2**31 - 1, 2**31 - 2, ...) never
meets a training step. Equal counters give equal masks, also for Monte-Carlo passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

M31 = 0x7FFF_FFFF  # hash states are 31-bit, so every product stays below 2**58
_MUL = 0x45D9F3B
_ELEMENT_HASH: dict[tuple[int, str], Tensor] = {}


def mix31(x: Tensor) -> Tensor:
    """A bijective integer hash of int64 values in [0, 2**31) onto [0, 2**31)."""
    x = (((x >> 16) ^ x) * _MUL) & M31
    x = (((x >> 16) ^ x) * _MUL) & M31
    return (x >> 16) ^ x


def _element_hash(numel: int, device: torch.device) -> Tensor:
    """mix31(0, 1, ..., numel - 1), cached per size and device."""
    if numel > M31:
        raise ValueError(f"{numel} elements per member exceed the 31-bit mask index")
    key = (numel, str(device))
    if key not in _ELEMENT_HASH:
        if len(_ELEMENT_HASH) > 64:
            _ELEMENT_HASH.clear()
        _ELEMENT_HASH[key] = mix31(torch.arange(numel, dtype=torch.int64, device=device))
    return _ELEMENT_HASH[key]


def _gather(t: Tensor, members: Tensor | None) -> Tensor:
    return t if members is None else t.index_select(0, members)


def select_members(t: Tensor, idx: Tensor) -> Tensor:
    """``t.index_select(0, idx)`` in ``t``'s memory layout (a member linear weight stays
    in-major: see :class:`MemberLinear`)."""
    picked = t.index_select(0, idx)
    like = t[: len(idx)]
    return picked if picked.stride() == like.stride() else torch.empty_like(like).copy_(picked)


def _stacked(tensors: Sequence[Tensor], what: str) -> Tensor:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"{what}: members have different shapes {sorted(shapes)}")
    return torch.stack([t.detach() for t in tensors]).clone()


class MemberLinear(nn.Module):
    """K affine maps: (K, N, in) → (K, N, out), weight (K, out, in), bias (K, out).

    The weight is stored *in-major* (strides of a (K, in, out) tensor, seen as (K, out,
    in)): the layout in which ``baddbmm``'s backward produces its gradient, so autograd
    hands it over instead of transposing 4 MB-16 MB into place at every step (2.9x
    faster forward + backward of a 2048x2048 layer on 2 CPU threads).
    """

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.transpose(1, 2).contiguous().transpose(1, 2))
        self.bias = nn.Parameter(bias)

    @classmethod
    def from_solo(cls, layers: Sequence[nn.Linear], name: str = "linear") -> MemberLinear:
        if any(layer.bias is None for layer in layers):
            raise ValueError(f"{name}: linear layers without bias are not supported")
        return cls(
            _stacked([m.weight for m in layers], name), _stacked([m.bias for m in layers], name)
        )

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        weight, bias = _gather(self.weight, members), _gather(self.bias, members)
        # One kernel whatever K (also K = 1): a member's arithmetic is then the same alone
        # and in any stack, bitwise on the CPU, which matters where training is chaotic
        # (plain ℓ1's sign flips amplify a last-bit difference into another network).
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


class MemberConv2d(nn.Module):
    """K convolutions as one grouped convolution: (K, N, C, H, W) → (K, N, out, H', W')."""

    def __init__(self, weight: Tensor, bias: Tensor, stride=1, padding=0, dilation=1) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)  # (K, out, in, kh, kw)
        self.bias = nn.Parameter(bias)  # (K, out)
        self.stride, self.padding, self.dilation = stride, padding, dilation

    @classmethod
    def from_solo(cls, layers: Sequence[nn.Conv2d], name: str = "conv") -> MemberConv2d:
        first = layers[0]
        for m in layers:
            if m.groups != 1 or m.bias is None or m.padding_mode != "zeros":
                raise ValueError(f"{name}: only ungrouped zero-padded convs with bias")
            if (m.stride, m.padding, m.dilation) != (first.stride, first.padding, first.dilation):
                raise ValueError(f"{name}: members have different stride/padding/dilation")
        weight = _stacked([m.weight for m in layers], name)
        bias = _stacked([m.bias for m in layers], name)
        return cls(weight, bias, first.stride, first.padding, first.dilation)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}"

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        weight, bias = _gather(self.weight, members), _gather(self.bias, members)
        k, n = x.shape[:2]
        conv = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}
        if k == 1:
            return F.conv2d(x[0], weight[0], bias[0], **conv).unsqueeze(0)
        grouped = x.transpose(0, 1).reshape(n, k * x.shape[2], *x.shape[3:])
        out = F.conv2d(grouped, weight.flatten(0, 1), bias.flatten(), groups=k, **conv)
        return out.view(n, k, -1, *out.shape[2:]).transpose(0, 1)


class MemberBatchNorm(nn.Module):
    """K independent BatchNorm1d/2d layers; the member axis is folded into the channels."""

    def __init__(self, state: Sequence[Tensor], momentum: float = 0.1, eps: float = 1e-5) -> None:
        """``state``: weight, bias (K, C), running_mean, running_var (K, C), counts (K,)."""
        super().__init__()
        for attr, value in zip(_BN_STATE, state, strict=True):
            if attr in ("weight", "bias"):
                setattr(self, attr, nn.Parameter(value))
            else:
                self.register_buffer(attr, value)
        self.momentum, self.eps = momentum, eps

    @classmethod
    def from_solo(cls, layers: Sequence[nn.modules.batchnorm._BatchNorm], name: str = "bn"):
        first = layers[0]
        for m in layers:
            if not (m.affine and m.track_running_stats) or m.momentum is None:
                raise ValueError(f"{name}: needs affine batchnorm with a fixed momentum")
            if (m.momentum, m.eps) != (first.momentum, first.eps):
                raise ValueError(f"{name}: members have different momentum/eps")
        stack = [_stacked([getattr(m, a) for m in layers], name) for a in _BN_STATE]
        return cls(stack, momentum=first.momentum, eps=first.eps)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        k, n, c = x.shape[:3]
        folded = x.transpose(0, 1).reshape(n, k * c, *x.shape[3:])
        weight, bias = _gather(self.weight, members), _gather(self.bias, members)
        mean, var = _gather(self.running_mean, members), _gather(self.running_var, members)
        affine = (weight.flatten(), bias.flatten(), self.training, self.momentum, self.eps)
        out = F.batch_norm(folded, mean.view(-1), var.view(-1), *affine)
        if self.training:  # the running stats of a gathered subset are copies: write back
            if members is None:
                self.num_batches_tracked.add_(1)
            else:
                self.running_mean.index_copy_(0, members, mean)
                self.running_var.index_copy_(0, members, var)
                self.num_batches_tracked.index_add_(0, members, torch.ones_like(members))
        return out.view(n, k, c, *x.shape[3:]).transpose(0, 1)


_BN_STATE = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class MemberMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` applied to every member's (N, C, H, W) maps."""

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x.flatten(0, 1))
        return out.view(*x.shape[:2], *out.shape[1:])


class MemberFlatten(nn.Module):
    """(K, N, ...) → (K, N, features), the member version of ``nn.Flatten()``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2)


class MemberDropout(nn.Module):
    """Dropout with one retention probability p per member and counter-based hash masks.

    ``mode`` "inverted" scales kept units by 1/p while training; "weight_scaling" trains
    unscaled and multiplies by p at evaluation. ``spatial`` draws one mask value per
    (member, example, channel) of a conv map. ``stochastic`` draws masks in eval mode too
    (Monte-Carlo dropout), as :class:`~reglab.models.dropout.RetentionDropout` does.
    ``salt`` tells the layers of a net apart (from_solo uses the layer's name).
    """

    def __init__(
        self,
        p: Sequence[float] | Tensor,
        mode: str = "inverted",
        spatial: bool = False,
        salt: int = 0,
    ) -> None:
        super().__init__()
        p = torch.as_tensor(p, dtype=torch.get_default_dtype()).flatten()
        for value in p.tolist():
            if not 0.0 < value <= 1.0:
                raise ValueError(f"retention probability p={value} must be in (0, 1]")
        if mode not in ("inverted", "weight_scaling"):
            raise ValueError(f"dropout mode={mode!r}: allowed are inverted, weight_scaling")
        self.register_buffer("p", p)  # (K,)
        self.mode, self.spatial, self.salt = mode, spatial, int(salt) & M31
        self.stochastic = False
        self.refresh()

    def refresh(self) -> None:
        """Recompute the all-members-keep-everything shortcut after ``p`` changed."""
        self.all_retained = bool((self.p == 1.0).all())

    def extra_repr(self) -> str:
        return f"p_retain={self.p.tolist()}, mode={self.mode}, spatial={self.spatial}"

    def masks(self, shape: Sequence[int], seeds: Tensor, counter: Tensor, p: Tensor) -> Tensor:
        """Boolean keep-masks for activations of ``shape`` (K, N, ...), broadcastable."""
        k, n = shape[0], shape[1]
        mask_shape = (k, n, shape[2], *[1] * (len(shape) - 3)) if self.spatial else tuple(shape)
        per_member = prod(mask_shape[1:])
        key = mix31((mix31(seeds ^ self.salt) + (counter & M31)) & M31)
        h = mix31(_element_hash(per_member, seeds.device).unsqueeze(0) ^ key.unsqueeze(1))
        threshold = torch.floor(p.double() * 2.0**31).long()  # p = 1 keeps every h < 2**31
        return (h < threshold.unsqueeze(1)).view(mask_shape)

    def forward(
        self, x: Tensor, seeds: Tensor, counter: Tensor, members: Tensor | None = None
    ) -> Tensor:
        if self.all_retained:
            return x
        p = _gather(self.p, members).to(x.dtype).view(-1, *[1] * (x.dim() - 1))
        if not (self.training or self.stochastic):
            return x * p if self.mode == "weight_scaling" else x
        mask = self.masks(x.shape, seeds, counter, _gather(self.p, members)).to(x.dtype)
        return x * (mask / p if self.mode == "inverted" else mask)
