"""``torch.optim.Adam`` and ``AdamW`` per member, with per-member step counts for the bias
corrections (Kingma & Ba 2015, Algorithm 1; Loshchilov & Hutter 2019, Algorithm 2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from reglab.optim.member import PerMember, _hyper, _master_dtype, _MemberOptimizer, _scalar, _upload


class MemberAdam(_MemberOptimizer):
    """torch.optim.Adam per member (L2 weight decay in the grad), with per-member step counts
    for the bias corrections. ``betas``: one (beta1, beta2) pair or one pair per member."""

    per_member = ("lr", "beta1", "beta2", "weight_decay")
    shared = ("eps",)
    state_names = ("exp_avg", "exp_avg_sq")
    decoupled = False
    default_weight_decay = 0.0

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: PerMember = 1e-3,
        betas: Any = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: PerMember | None = None,  # None: 0 (Adam), 1e-2 (AdamW) as in torch
        *,
        members: int | None = None,
    ) -> None:
        weight_decay = self.default_weight_decay if weight_decay is None else weight_decay
        b1, b2 = self._split(betas)
        hyper = dict(lr=lr, beta1=b1, beta2=b2, weight_decay=weight_decay)
        super().__init__(params, members, hyper, dict(eps=_scalar("eps", eps)))

    @staticmethod
    def _split(betas: Any) -> tuple[Any, Any]:
        if isinstance(betas, Mapping):
            return {k: b[0] for k, b in betas.items()}, {k: b[1] for k, b in betas.items()}
        if len(betas) == 2 and all(isinstance(b, int | float) for b in betas):
            return float(betas[0]), float(betas[1])
        if any(len(b) != 2 for b in betas):
            raise ValueError(f"betas must be one pair or one pair per member, got {betas}")
        return [float(b[0]) for b in betas], [float(b[1]) for b in betas]

    def set_hyperparameters(self, **per_member: Any) -> None:
        """As the base, plus ``betas``: a pair, K pairs, or ``{member: pair}``."""
        if "betas" in per_member:
            per_member["beta1"], per_member["beta2"] = self._split(per_member.pop("betas"))
        super().set_hyperparameters(**per_member)

    beta1 = _hyper("beta1")

    @property
    def betas(self) -> list[tuple[float, float]]:
        host = self._sync()
        return list(zip(host["beta1"], host["beta2"], strict=True))

    def _rows(self) -> dict[str, list[float]]:
        h = self._host
        rows = {"lr": h["lr"], "beta1": h["beta1"], "beta2": h["beta2"], "wd": h["weight_decay"]}
        rows["one_minus_beta1"] = [1 - b for b in h["beta1"]]
        rows["one_minus_beta2"] = [1 - b for b in h["beta2"]]
        rows["decay"] = [1 - lr * wd for lr, wd in zip(h["lr"], h["weight_decay"], strict=True)]
        return rows

    def _update(self) -> None:
        params = self.params
        device = params[0].device
        self._count_step()
        if "steps" not in self._dev:
            self._dev["steps"] = _upload([self.steps], device)[0]
        step_t = self._dev["steps"]
        co64 = self._coefficients(_master_dtype(device))
        bc1 = 1 - co64["beta1"] ** step_t
        bc2 = 1 - co64["beta2"] ** step_t
        per_step = torch.stack([-(co64["lr"] / bc1), bc2.sqrt()])  # -step_size, sqrt(bc2)
        cast = {dtype: per_step.to(dtype) for dtype in {p.dtype for p in params}}
        params = [p for p in params if p.grad is not None]
        if not params:
            return
        views = [cast[p.dtype].view(2, -1, *([1] * (p.dim() - 1))) for p in params]
        grads = [p.grad for p in params]
        if any(wd != 0 for wd in self._host["weight_decay"]):
            if self.decoupled:
                torch._foreach_mul_(params, self._per_param(params, "decay"))
            else:
                grads = torch._foreach_addcmul(grads, params, self._per_param(params, "wd"))
        state = [self._buffers(p, "exp_avg", "exp_avg_sq") for p in params]
        exp_avgs, exp_avg_sqs = [s[0] for s in state], [s[1] for s in state]
        torch._foreach_lerp_(exp_avgs, grads, self._per_param(params, "one_minus_beta1"))
        torch._foreach_mul_(exp_avg_sqs, self._per_param(params, "beta2"))
        scaled = torch._foreach_mul(grads, self._per_param(params, "one_minus_beta2"))
        torch._foreach_addcmul_(exp_avg_sqs, scaled, grads)
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, [v[1] for v in views])  # / sqrt(bias correction 2)
        torch._foreach_add_(denom, self._host["eps"])
        steps = torch._foreach_mul(exp_avgs, [v[0] for v in views])  # × -step size
        torch._foreach_addcdiv_(params, steps, denom)


class MemberAdamW(MemberAdam):
    """torch.optim.AdamW per member: decoupled weight decay ``p *= 1 - lr*wd``."""

    decoupled = True
    default_weight_decay = 1e-2
