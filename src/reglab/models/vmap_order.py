"""One member computed in the order ``vmap`` computes it, without ``vmap``.

Under ``torch.func.vmap`` with per-member weights, the batching rules of PyTorch's fused
ops split off their affine part: ``linear`` is a matmul, then ``+ bias``; a convolution
runs without its bias, then adds it; ``batch_norm``, ``layer_norm`` and ``group_norm``
normalize without weight and bias, then multiply and add. The fused kernels round
differently, so a net called directly differs from the same net as a stack member in the
last bits, and chaotic runs amplify that into different results.

:class:`VmapOrder` is a ``TorchFunctionMode`` that makes the same split on a direct call,
whoever calls the op (an ``nn.Module`` or a user's ``F.linear``): a stack of one then
runs at the speed of a plain call and computes, bit for bit, what it computes in a
stack. :meth:`reglab.models.stack.StackedNet.choose_solo_path` checks that on a trial
step before relying on it; every other op passes through unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode


def _per_channel(t: Tensor, out: Tensor) -> Tensor:
    """``t`` (C,) shaped to broadcast along dim 1 of ``out`` (N, C, ...)."""
    return t if out.dim() == 2 else t.view(-1, *[1] * (out.dim() - 2))


def _linear(func, x, weight, bias=None):
    out = func(x, weight)  # without a bias: the matmul vmap's rule runs
    return out if bias is None else out + bias


def _conv(func, x, weight, bias=None, *rest, **kwargs):
    out = func(x, weight, None, *rest, **kwargs)
    return out if bias is None else out + _per_channel(bias, out)


def _norm(names: tuple[str, ...], per_channel: bool):
    """``func`` without its weight and bias (``names``: its parameters, in order), then
    ``* weight + bias``, per channel (batch and group norm) or elementwise (layer norm)."""

    def split(func, *args, **kwargs):
        named = dict(zip(names, args, strict=False)) | kwargs
        weight, bias = named.pop("weight", None), named.pop("bias", None)
        out = func(**named)
        if weight is not None:
            out = out * (_per_channel(weight, out) if per_channel else weight)
        if bias is not None:
            out = out + (_per_channel(bias, out) if per_channel else bias)
        return out

    return split


_BATCH_NORM_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training",
                    "momentum", "eps")  # fmt: skip
_SPLITS = {
    F.linear: _linear,
    F.conv1d: _conv,
    F.conv2d: _conv,
    F.conv3d: _conv,
    F.batch_norm: _norm(_BATCH_NORM_ARGS, per_channel=True),
    F.layer_norm: _norm(("input", "normalized_shape", "weight", "bias", "eps"), False),
    F.group_norm: _norm(("input", "num_groups", "weight", "bias", "eps"), True),
}


class VmapOrder(TorchFunctionMode):
    """Fused ops split as vmap's batching rules split them (see module doc)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        split = _SPLITS.get(func)
        if split is None:
            return func(*args, **(kwargs or {}))
        return split(func, *args, **(kwargs or {}))
