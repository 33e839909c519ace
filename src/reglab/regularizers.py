"""Weight penalties and the projections/proximal steps applied after each optimizer step.

A regularizer has two hooks, so that every kind fits one training loop:

* :meth:`Regularizer.penalty` – a scalar added to the loss, differentiated by autograd;
* :meth:`Regularizer.after_step` – an in-place map applied to the weights after the
  optimizer step (proximal ℓ1, max-norm projection).

Both are written for **one** model's parameters, and a regularizer takes its strengths
as constructor arguments kept as attributes of the same name (``self.lam = lam``). In a
stack, :class:`MemberRegularizer` applies it to each member with that member's strengths
through ``torch.func.vmap``, so a penalty is never mixed across members. By default only
weights (matrices and conv kernels) are regularized; biases and batchnorm's scale/shift
only when asked (``include_biases``, ``include_batchnorm``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import vmap

_NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
#: Constructor arguments that choose parameters, not strengths.
SELECTION = ("include_biases", "include_batchnorm")


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

    def penalty(self, params: list[Tensor]) -> Tensor | None:
        """The term added to one model's loss (a scalar), or None."""
        return None

    @torch.no_grad()
    def after_step(self, params: list[Tensor], lr: float | Tensor) -> None:
        """Change one model's ``params`` in place after an optimizer step of rate ``lr``."""
        return None


def _squares(params: Sequence[Tensor]) -> Tensor:
    return sum(p.square().sum() for p in params)


def _abs(params: Sequence[Tensor]) -> Tensor:
    return sum(p.abs().sum() for p in params)


class L2(Regularizer):
    """λ‖w‖²₂ added to the loss; its gradient is 2λw (weight decay with rate 2λ for SGD)."""

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    def penalty(self, params):
        return self.lam * _squares(params)


class L1(Regularizer):
    """λ‖w‖₁ added to the loss; autograd gives the subgradient λ·sign(w).

    A fixed-size step of λη·sign(w) overshoots zero, so weights oscillate around 0
    instead of settling on it: plain ℓ1 yields almost no exact zeros.
    """

    def __init__(self, lam: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam = lam

    def penalty(self, params):
        return self.lam * _abs(params)


class ElasticNet(Regularizer):
    """λ₁‖w‖₁ + λ₂‖w‖²₂ (Zou & Hastie 2005)."""

    def __init__(self, lam_l1: float, lam_l2: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lam_l1 = lam_l1
        self.lam_l2 = lam_l2

    def penalty(self, params):
        return self.lam_l1 * _abs(params) + self.lam_l2 * _squares(params)


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
    conv layer, one output channel's kernel. As ``torch.renorm``: a vector of norm n > c
    is scaled by c / (n + 1e-7).
    """

    def __init__(self, c: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.c = c

    @torch.no_grad()
    def after_step(self, params, lr):
        for p in params:
            if p.dim() > 1:  # (out, in, ...): a unit's incoming weights are a row
                norms = p.flatten(1).norm(dim=1)
                scale = torch.where(norms > self.c, self.c / (norms + 1e-7), torch.ones_like(norms))
                p.mul_(scale.view(-1, *([1] * (p.dim() - 1))))


def zero_fraction(params: list[Tensor]) -> Tensor:
    """Per member, the fraction of the given stacked parameters (K, ...) that are exactly
    zero, (K,)."""
    if not params:
        return torch.zeros(1)
    zeros = torch.stack([(p == 0).flatten(1).sum(1) for p in params]).sum(0)
    return zeros.float() / sum(p[0].numel() for p in params)


def strength_names(settings: dict) -> list[str]:
    """The strengths among a regularizer's constructor arguments: its numbers."""
    return [
        k
        for k, v in settings.items()
        if not k.startswith("_") and k not in SELECTION
        and isinstance(v, int | float) and not isinstance(v, bool)
    ]  # fmt: skip


class MemberRegularizer:
    """One kind of regularizer applied to each member of a stack with its own strengths.

    ``members``: each member's regularizer (one class); ``strengths``: the attribute
    names that may differ between them (:func:`strength_names`). The hooks run per member
    under ``vmap``: ``penalty`` gives (K,), ``after_step`` changes each member's slice.
    """

    def __init__(
        self, members: Sequence[Regularizer], strengths: Sequence[str], device: torch.device
    ) -> None:
        kinds = {type(m) for m in members}
        if len(kinds) != 1:
            kinds_shown = sorted(map(str, kinds))
            raise ValueError(f"a stack needs one kind of regularizer, got {kinds_shown}")
        self.template = members[0]
        self.include_biases = self.template.include_biases
        self.include_batchnorm = self.template.include_batchnorm
        self.penalised = type(self.template).penalty is not Regularizer.penalty
        self.stepped = type(self.template).after_step is not Regularizer.after_step
        self.active = self.penalised or self.stepped  # else neither hook does anything
        self.strengths: dict[str, Tensor] = {}
        for name in strengths:
            values = [getattr(m, name, None) for m in members]
            if any(v is None for v in values):
                if len({repr(v) for v in values}) > 1:
                    raise ValueError(
                        f"regularizer.{name}: differs between members, but "
                        f"{type(self.template).__name__} keeps no attribute {name!r}"
                    )
                continue
            self.strengths[name] = torch.tensor(
                [float(v) for v in values], dtype=torch.float32, device=device
            )

    def keep(self, members: Tensor) -> None:
        """Keep the strengths of ``members`` only (members left the stack)."""
        self.strengths = {n: v.index_select(0, members) for n, v in self.strengths.items()}

    def _member(self, strengths: dict[str, Tensor]) -> Regularizer:
        one = copy.copy(self.template)
        for name, value in strengths.items():
            setattr(one, name, value)
        return one

    def penalty(self, params: list[Tensor]) -> Tensor | None:
        """Each member's penalty on its own parameters, (K,); None without a penalty."""
        if not self.penalised or not params:
            return None

        def one(params, strengths):
            value = self._member(strengths).penalty(params)
            if not isinstance(value, Tensor) or value.dim() != 0:
                raise ValueError(f"penalty must return a scalar tensor, got {value!r}")
            return value

        return vmap(one, randomness="error")(params, self.strengths)

    @torch.no_grad()
    def after_step(self, params: list[Tensor], lr: Tensor) -> None:
        """Each member's ``after_step`` on its own parameters with its own ``lr`` (K,)."""
        if not self.stepped or not params:
            return

        def one(params, lr, strengths):
            self._member(strengths).after_step(params, lr)
            return lr

        vmap(one, randomness="error")(params, lr, self.strengths)

    def check(self, params: list[Tensor], lr: Tensor) -> None:
        """Both hooks once on copies of ``params``: a regularizer that cannot run per
        member is refused here, with the reason, before training."""
        name = type(self.template).__name__
        copies = [p.detach().clone().requires_grad_(p.requires_grad) for p in params]
        for hook, call in (
            ("penalty", lambda: self.penalty(copies)),
            ("after_step", lambda: self.after_step(copies, lr)),
        ):
            try:
                call()
            except Exception as error:  # any failure is the reason
                reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
                raise ValueError(
                    f"regularizer {name}.{hook}: cannot be applied per member "
                    f"(torch.func.vmap): {reason}"
                ) from None
