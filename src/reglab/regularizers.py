"""Weight penalties and the projections/proximal steps applied after each optimizer step.

A regularizer has two hooks, so that every kind fits one training loop:

* :meth:`Regularizer.penalty` – a term added to the loss, differentiated by autograd;
* :meth:`Regularizer.after_step` – an in-place map applied to the weights after the
  optimizer step (proximal ℓ1, max-norm projection).

By default only weights (matrices and conv kernels) are regularized; biases and
batchnorm's scale/shift only when asked (``include_biases``, ``include_batchnorm``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

_NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


class Regularizer:
    """No regularization; the base of all others."""

    def __init__(self, include_biases: bool = False, include_batchnorm: bool = False) -> None:
        self.include_biases = include_biases
        self.include_batchnorm = include_batchnorm

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
    return torch.stack(list(terms)).sum()


class L2(Regularizer):
    """λ‖w‖²₂ added to the loss; its gradient is 2λw (weight decay with rate 2λ for SGD)."""

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    def penalty(self, params):
        return self.lam * _sum(p.square().sum() for p in params)


class L1(Regularizer):
    """λ‖w‖₁ added to the loss; autograd gives the subgradient λ·sign(w).

    A fixed-size step of λη·sign(w) overshoots zero, so weights oscillate around 0
    instead of settling on it: plain ℓ1 yields almost no exact zeros.
    """

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    def penalty(self, params):
        return self.lam * _sum(p.abs().sum() for p in params)


class ElasticNet(Regularizer):
    """λ₁‖w‖₁ + λ₂‖w‖²₂ (Zou & Hastie 2005)."""

    def __init__(self, lam_l1: float, lam_l2: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam_l1 = lam_l1
        self.lam_l2 = lam_l2

    def penalty(self, params):
        return _sum(self.lam_l1 * p.abs().sum() + self.lam_l2 * p.square().sum() for p in params)


class L1Proximal(Regularizer):
    """The proximal (soft-threshold) step for λ‖w‖₁ after each optimizer step.

    w ← sign(w)·max(|w| − ηλ, 0) = w − min(ηλ, |w|)·sign(w), with η the current learning
    rate: weights that would cross zero stop exactly on it, and never change sign.
    """

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    @torch.no_grad()
    def after_step(self, params, lr):
        threshold = lr * self.lam
        for p in params:
            p.copy_(p.sign() * (p.abs() - threshold).clamp_min_(0.0))


class MaxNorm(Regularizer):
    """Clip each unit's incoming weight vector to ‖w‖₂ ≤ c (Srivastava et al. 2014 §5.1).

    For a linear layer a unit's incoming weights are one row of the weight matrix; for a
    conv layer, one output channel's kernel.
    """

    def __init__(self, c: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.c = c

    @torch.no_grad()
    def after_step(self, params, lr):
        for p in params:
            if p.dim() > 1:
                p.copy_(torch.renorm(p, 2, 0, self.c))


def zero_fraction(params: list[nn.Parameter]) -> float:
    """Fraction of the given parameters that are exactly zero."""
    zeros = sum(int((p == 0).sum()) for p in params)
    return zeros / max(1, sum(p.numel() for p in params))
