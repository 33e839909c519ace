"""Weight penalties and the projections/proximal steps applied after each optimizer step.

A regularizer has two hooks, so that every kind fits one training loop:

* :meth:`Regularizer.penalty` – a term added to the loss, differentiated by autograd;
* :meth:`Regularizer.after_step` – an in-place map applied to the weights after the
  optimizer step (proximal ℓ1, max-norm projection).

By default only weights (matrices and conv kernels) are regularized; biases and
batchnorm's scale/shift only when asked (``include_biases``, ``include_batchnorm``).

Parameters carry a leading member axis K (:mod:`reglab.models.stack`): a penalty is one
value per member, (K,), and every strength (``STRENGTHS``) is one value per member once
:meth:`Regularizer.stack` has joined the members' regularizers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

_NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


class Regularizer:
    """No regularization; the base of all others."""

    #: The strengths, which may differ between the members of a stack.
    STRENGTHS: tuple[str, ...] = ()

    def __init__(self, include_biases: bool = False, include_batchnorm: bool = False) -> None:
        self.include_biases = include_biases
        self.include_batchnorm = include_batchnorm

    @classmethod
    def stack(cls, members: list[Regularizer], device: torch.device) -> Regularizer:
        """One regularizer for a stack: each strength becomes a (K,) tensor."""
        kinds = {type(m) for m in members}
        if len(kinds) != 1:
            raise ValueError(
                f"a stack needs one kind of regularizer, got {sorted(map(str, kinds))}"
            )
        stacked = copy.copy(members[0])
        for name in stacked.STRENGTHS:
            values = [float(getattr(m, name)) for m in members]
            setattr(stacked, name, torch.tensor(values, dtype=torch.float32, device=device))
        return stacked

    def keep(self, members: torch.Tensor) -> None:
        """Keep the strengths of ``members`` only (members left the stack)."""
        for name in self.STRENGTHS:
            setattr(self, name, getattr(self, name).index_select(0, members))

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters this regularizer acts on (weights only unless asked)."""
        selected = []
        for module in model.modules():
            is_norm = isinstance(module, _NORM_LAYERS)
            if is_norm and not self.include_batchnorm:
                continue
            for name, param in module.named_parameters(recurse=False):
                if is_norm or name == "weight" or (name == "bias" and self.include_biases):
                    selected.append(param)
        return selected

    def penalty(self, params: list[nn.Parameter]) -> torch.Tensor | None:
        return None

    @torch.no_grad()
    def after_step(self, params: list[nn.Parameter], lr: float) -> None:
        return None


def _sum(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """Per-member sum of per-member terms, (K,)."""
    return torch.stack(list(terms)).sum(0)


def as_stack(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """A solo model's parameters as a stack of one (views with a member axis of size 1):
    penalties and in-place steps on them act on the model itself."""
    return [p.unsqueeze(0) for p in params]


def _per_member(values, like: torch.Tensor) -> torch.Tensor:
    """Strengths (K,) shaped to broadcast against a stacked parameter (K, ...)."""
    if not isinstance(values, torch.Tensor):
        return values
    return values.view(-1, *([1] * (like.dim() - 1)))


def _square(p: torch.Tensor) -> torch.Tensor:
    return p.square().flatten(1).sum(1)


def _abs(p: torch.Tensor) -> torch.Tensor:
    return p.abs().flatten(1).sum(1)


class L2(Regularizer):
    """λ‖w‖²₂ added to the loss; its gradient is 2λw (weight decay with rate 2λ for SGD)."""

    STRENGTHS = ("lam",)

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    def penalty(self, params):
        return self.lam * _sum(_square(p) for p in params)


class L1(Regularizer):
    """λ‖w‖₁ added to the loss; autograd gives the subgradient λ·sign(w).

    A fixed-size step of λη·sign(w) overshoots zero, so weights oscillate around 0
    instead of settling on it: plain ℓ1 yields almost no exact zeros.
    """

    STRENGTHS = ("lam",)

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    def penalty(self, params):
        return self.lam * _sum(_abs(p) for p in params)


class ElasticNet(Regularizer):
    """λ₁‖w‖₁ + λ₂‖w‖²₂ (Zou & Hastie 2005)."""

    STRENGTHS = ("lam_l1", "lam_l2")

    def __init__(self, lam_l1: float, lam_l2: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam_l1 = lam_l1
        self.lam_l2 = lam_l2

    def penalty(self, params):
        return _sum(self.lam_l1 * _abs(p) + self.lam_l2 * _square(p) for p in params)


class L1Proximal(Regularizer):
    """The proximal (soft-threshold) step for λ‖w‖₁ after each optimizer step.

    w ← sign(w)·max(|w| − ηλ, 0) = w − min(ηλ, |w|)·sign(w), with η the current learning
    rate: weights that would cross zero stop exactly on it, and never change sign.
    ``lr`` is each member's learning rate, (K,).
    """

    STRENGTHS = ("lam",)

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    @torch.no_grad()
    def after_step(self, params, lr):
        threshold = lr * self.lam
        for p in params:
            p.copy_(p.sign() * (p.abs() - _per_member(threshold, p)).clamp_min_(0.0))


class MaxNorm(Regularizer):
    """Clip each unit's incoming weight vector to ‖w‖₂ ≤ c (Srivastava et al. 2014 §5.1).

    For a linear layer a unit's incoming weights are one row of the weight matrix; for a
    conv layer, one output channel's kernel. As ``torch.renorm``: a vector of norm n > c
    is scaled by c / (n + 1e-7).
    """

    STRENGTHS = ("c",)

    def __init__(self, c: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.c = c

    @torch.no_grad()
    def after_step(self, params, lr):
        for p in params:
            if p.dim() > 2:  # (K, out, in, ...): a member's units are its rows
                norms = p.flatten(2).norm(dim=2)  # (K, out)
                c = _per_member(self.c, norms)
                scale = torch.where(norms > c, c / (norms + 1e-7), torch.ones_like(norms))
                p.mul_(scale.view(*scale.shape, *([1] * (p.dim() - 2))))


def zero_fraction(params: list[nn.Parameter]) -> torch.Tensor:
    """Per member, the fraction of the given parameters that are exactly zero, (K,)."""
    if not params:
        return torch.zeros(1)
    zeros = _sum((p == 0).flatten(1).sum(1) for p in params)
    return zeros.float() / sum(p[0].numel() for p in params)
