"""Stacked training: K independent networks ("members") vectorized as one module.

Every weight, buffer and activation of a :class:`MemberNet` carries a leading *member
axis* of size K: a linear weight is (K, out, in), a batch of activations (K, N, features)
or (K, N, C, H, W). Member k is exactly the solo model k it was stacked from
(:meth:`MemberNet.from_solo`); nothing is shared between members:

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

import copy
import zlib
from collections.abc import Sequence
from math import prod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reglab.models.blocks import ACTIVATIONS
from reglab.models.dropout import RetentionDropout

_M31 = 0x7FFF_FFFF  # hash states are 31-bit, so every product stays below 2**58
_MUL = 0x45D9F3B
_ELEMENT_HASH: dict[tuple[int, str], Tensor] = {}


def mix31(x: Tensor) -> Tensor:
    """A bijective integer hash of int64 values in [0, 2**31) onto [0, 2**31)."""
    x = (((x >> 16) ^ x) * _MUL) & _M31
    x = (((x >> 16) ^ x) * _MUL) & _M31
    return (x >> 16) ^ x


def _element_hash(numel: int, device: torch.device) -> Tensor:
    """mix31(0, 1, ..., numel - 1), cached per size and device."""
    if numel > _M31:
        raise ValueError(f"{numel} elements per member exceed the 31-bit mask index")
    key = (numel, str(device))
    if key not in _ELEMENT_HASH:
        if len(_ELEMENT_HASH) > 64:
            _ELEMENT_HASH.clear()
        _ELEMENT_HASH[key] = mix31(torch.arange(numel, dtype=torch.int64, device=device))
    return _ELEMENT_HASH[key]


def _gather(t: Tensor, members: Tensor | None) -> Tensor:
    return t if members is None else t.index_select(0, members)


def _stacked(tensors: Sequence[Tensor], what: str) -> Tensor:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"{what}: members have different shapes {sorted(shapes)}")
    return torch.stack([t.detach() for t in tensors]).clone()


class MemberLinear(nn.Module):
    """K affine maps: (K, N, in) → (K, N, out), weight (K, out, in), bias (K, out)."""

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
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
        self.mode, self.spatial, self.salt = mode, spatial, int(salt) & _M31
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
        key = mix31((mix31(seeds ^ self.salt) + (counter & _M31)) & _M31)
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


_ELEMENTWISE = (*ACTIVATIONS.values(), nn.Identity)


class MemberNet(nn.Module):
    """K networks of one architecture as one module; member k ↔ index k of every tensor.

    Children keep the solo model's layer names (``fc1``, ``bn1``, ``act1``, ``drop1``, ...)
    and activation modules are real submodules, so forward hooks see (K, N, ...) tensors.
    Buffers ``seeds`` (K,) are the members' mask seeds, ``mask_counter`` (K,) their mask
    counters (see the module docstring).
    """

    def __init__(self, layers: Sequence[tuple[str, nn.Module]], seeds: Sequence[int]) -> None:
        super().__init__()
        for name, layer in layers:
            self.add_module(name, layer)
        seeds = torch.as_tensor(seeds, dtype=torch.int64).flatten()
        if bool(((seeds < 0) | (seeds > _M31)).any()):
            raise ValueError(f"mask seeds must lie in [0, 2**31), got {seeds.tolist()}")
        self.register_buffer("seeds", seeds)
        self.register_buffer("mask_counter", torch.zeros_like(seeds))

    @classmethod
    def from_solo(cls, models: Sequence[nn.Module], mask_seeds: Sequence[int]) -> MemberNet:
        """Stack solo ``MLP``/``CNN`` models; member k starts bitwise equal to models[k]."""
        if len(models) != len(mask_seeds) or not models:
            raise ValueError(f"{len(models)} models but {len(mask_seeds)} mask seeds")
        device = next(models[0].parameters()).device
        layers = [(name, _convert(name, solo)) for name, solo in _aligned_layers(models)]
        return cls(layers, mask_seeds).to(device)

    @property
    def num_members(self) -> int:
        return self.seeds.shape[0]

    def set_mask_counter(self, counter: int | Sequence[int] | Tensor) -> None:
        """Set every member's mask counter (one int for all, or one per member)."""
        value = torch.as_tensor(counter, dtype=torch.int64)
        self.mask_counter.copy_(value.to(self.mask_counter.device).expand_as(self.mask_counter))

    def forward(self, x: Tensor, members: Tensor | None = None) -> Tensor:
        """Logits (K, N, classes) of x (K, N, ...); or only of ``members`` (a LongTensor).

        With ``members``, x is (len(members), N, ...) and the members' parameters, running
        stats, seeds, counters and p are gathered; no parameter is modified (batchnorm in
        training mode still updates those members' running stats).
        """
        seeds, counter = self.seeds, self.mask_counter
        if members is not None:
            members = torch.as_tensor(members, dtype=torch.int64, device=seeds.device)
            seeds, counter = seeds.index_select(0, members), counter.index_select(0, members)
        if x.shape[0] != seeds.shape[0]:
            raise ValueError(f"input has {x.shape[0]} members, expected {seeds.shape[0]}")
        for layer in self.children():
            if isinstance(layer, MemberDropout):
                x = layer(x, seeds, counter, members=members)
            elif isinstance(layer, MemberLinear | MemberConv2d | MemberBatchNorm):
                x = layer(x, members=members)
            else:
                x = layer(x)
        return x

    @torch.no_grad()
    def keep(self, members: Sequence[int] | Tensor) -> dict[nn.Parameter, nn.Parameter]:
        """Keep only ``members`` (in that order), in place; returns old → new Parameter.

        Parameters keep their slots, so ``parameters()`` lists the new ones in the old
        order: an optimizer's per-parameter state can be compacted in lockstep with
        ``index_select(0, members)``. Gradients are dropped.
        """
        idx = torch.as_tensor(members, dtype=torch.int64, device=self.seeds.device)
        mapping: dict[nn.Parameter, nn.Parameter] = {}
        for module in self.modules():
            for name, old in list(module._parameters.items()):
                if old is not None:
                    new = nn.Parameter(old.index_select(0, idx), old.requires_grad)
                    module._parameters[name] = mapping[old] = new
            for name, buf in list(module._buffers.items()):
                if buf is not None:
                    module._buffers[name] = buf.index_select(0, idx)
            if isinstance(module, MemberDropout):
                module.refresh()
        return mapping

    def _stateful(self):
        """(name, layer) of the layers whose state a solo model's state_dict holds."""
        for name, layer in self.named_children():
            if isinstance(layer, MemberLinear | MemberConv2d | MemberBatchNorm):
                yield name, layer

    def member_state_dict(self, k: int) -> dict[str, Tensor]:
        """Member k's weights and buffers, named and shaped as the solo model's (CPU)."""
        return {
            f"{name}.{key}": value[k].detach().clone().cpu()
            for name, layer in self._stateful()
            for key, value in layer.state_dict().items()
        }

    @torch.no_grad()
    def load_member_state_dict(self, k: int, state: dict[str, Tensor]) -> None:
        """Overwrite member k with a solo model's state_dict (the inverse of the above)."""
        targets = {
            f"{name}.{key}": value
            for name, layer in self._stateful()
            for key, value in layer.state_dict(keep_vars=True).items()
        }
        if set(targets) != set(state):
            missing, extra = set(targets) - set(state), set(state) - set(targets)
            raise KeyError(f"member state: missing {sorted(missing)}, unexpected {sorted(extra)}")
        for key, value in state.items():
            targets[key][k].copy_(value)

    def parameter_kinds(self) -> dict[str, str]:
        """Each parameter's name → "weight" (matrices, conv kernels), "bias" or "batchnorm"."""
        return {
            f"{name}.{key}": "batchnorm" if isinstance(layer, MemberBatchNorm) else key
            for name, layer in self.named_children()
            for key, _ in layer.named_parameters(recurse=False)
        }


def select_parameters(
    net: MemberNet, include_biases: bool = False, include_batchnorm: bool = False
) -> list[nn.Parameter]:
    """The parameters a :class:`~reglab.regularizers.Regularizer` would act on."""
    kinds = net.parameter_kinds()
    wanted = {"weight"} | ({"bias"} if include_biases else set())
    wanted |= {"batchnorm"} if include_batchnorm else set()
    return [p for name, p in net.named_parameters() if kinds[name] in wanted]


def set_member_stochastic(model: nn.Module, stochastic: bool) -> None:
    """Switch every member dropout layer to random masks at evaluation (MC dropout)."""
    for layer in model.modules():
        if isinstance(layer, MemberDropout):
            layer.stochastic = stochastic


def _aligned_layers(models: Sequence[nn.Module]) -> list[tuple[str, list[nn.Module | None]]]:
    """Layers by name, in order; a dropout layer some members lack is None for them."""
    seqs = [list(m.named_children()) for m in models]
    pos = [0] * len(seqs)
    aligned = []
    while any(i < len(s) for i, s in zip(pos, seqs, strict=True)):
        heads = [s[i] if i < len(s) else None for i, s in zip(pos, seqs, strict=True)]
        drops = [h for h in heads if h is not None and isinstance(h[1], RetentionDropout)]
        name = drops[0][0] if drops else heads[0][0] if heads[0] else None
        if not drops and any(h is None or h[0] != name for h in heads):
            raise ValueError(f"solo models' layers do not align: {[h and h[0] for h in heads]}")
        layers = [h[1] if h is not None and h[0] == name else None for h in heads]
        aligned.append((name, layers))
        pos = [i + (layer is not None) for i, layer in zip(pos, layers, strict=True)]
    return aligned


def _convert(name: str, layers: list[nn.Module | None]) -> nn.Module:
    """The member layer for one named layer of the solo models (None: no dropout there)."""
    first = next(layer for layer in layers if layer is not None)
    if isinstance(first, RetentionDropout):
        present = [m for m in layers if m is not None]
        if len({(m.mode, m.spatial) for m in present}) != 1:
            raise ValueError(f"{name}: members have different dropout mode/spatial")
        p = [1.0 if m is None else m.p for m in layers]
        return MemberDropout(p, first.mode, first.spatial, salt=zlib.crc32(name.encode()))
    if any(type(m) is not type(first) for m in layers):
        raise ValueError(f"{name}: members have different layer types")
    if isinstance(first, nn.Linear):
        return MemberLinear.from_solo(layers, name)
    if isinstance(first, nn.Conv2d):
        return MemberConv2d.from_solo(layers, name)
    if isinstance(first, nn.BatchNorm1d | nn.BatchNorm2d):
        return MemberBatchNorm.from_solo(layers, name)
    if isinstance(first, nn.MaxPool2d):
        args = (first.kernel_size, first.stride, first.padding, first.dilation)
        return MemberMaxPool2d(*args, ceil_mode=first.ceil_mode)
    if isinstance(first, nn.Flatten):
        if (first.start_dim, first.end_dim) != (1, -1):
            raise ValueError(f"{name}: only nn.Flatten() from dim 1 is supported")
        return MemberFlatten()
    if isinstance(first, _ELEMENTWISE):
        return copy.deepcopy(first)
    raise TypeError(f"{name}: no member version of {type(first).__name__}")
