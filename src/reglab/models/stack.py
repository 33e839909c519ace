"""Stacked training: K independent networks ("members") vectorized as one module.

Every weight, buffer and activation of a :class:`MemberNet` carries a leading *member
axis* of size K: a linear weight is (K, out, in), a batch of activations (K, N, features)
or (K, N, C, H, W). Member k is exactly the solo model k it was stacked from
(:meth:`MemberNet.from_solo`); nothing is shared between members. Its layers, and the
counter-based dropout masks that make a member's masks independent of its stack, are in
:mod:`reglab.models.member_layers`.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from reglab.models.blocks import ACTIVATIONS
from reglab.models.dropout import RetentionDropout
from reglab.models.member_layers import (
    M31,
    MemberBatchNorm,
    MemberConv2d,
    MemberDropout,
    MemberFlatten,
    MemberLinear,
    MemberMaxPool2d,
    select_members,
)

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
        if bool(((seeds < 0) | (seeds > M31)).any()):
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
                    new = nn.Parameter(select_members(old, idx), old.requires_grad)
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
