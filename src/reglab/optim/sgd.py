"""``torch.optim.SGD`` per member (momentum, dampening, Nesterov, weight decay)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from reglab.optim.member import PerMember, _hyper, _MemberOptimizer, _scalar


class MemberSGD(_MemberOptimizer):
    """torch.optim.SGD per member: weight decay in the grad, momentum buffer starting at the
    member's first grad once its momentum is nonzero, dampening, Nesterov."""

    per_member = ("lr", "momentum", "weight_decay", "nesterov")
    shared = ("dampening",)
    flags = ("momentum_started",)
    state_names = ("momentum_buffer",)

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: PerMember = 1e-3,
        momentum: PerMember = 0.0,
        dampening: float = 0.0,
        weight_decay: PerMember = 0.0,
        nesterov: bool | Sequence[bool] = False,
        *,
        members: int | None = None,
    ) -> None:
        nesterov = float(nesterov) if isinstance(nesterov, bool) else nesterov
        hyper = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, members, hyper, dict(dampening=_scalar("dampening", dampening)))
        h = self._host
        for m, nest in zip(h["momentum"], h["nesterov"], strict=True):
            if nest and (m <= 0 or h["dampening"] != 0):
                raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    momentum = _hyper("momentum")

    def _rows(self) -> dict[str, list[float]]:
        h, d = self._host, self._host["dampening"]
        ms = list(zip(h["momentum"], h["momentum_started"], h["nesterov"], strict=True))
        return {
            "neg_lr": [-lr for lr in h["lr"]],
            "wd": h["weight_decay"],
            # buf <- a*buf + b*g: (m, 1-d) once started, (0, 1) at the first grad, (1, 0) if off
            "a": [m if m and s else float(not m) for m, s, _ in ms],
            "b": [1 - d if m and s else float(m != 0) for m, s, _ in ms],
            # direction: buf, or g + c*buf (Nesterov: c = m; momentum off: c = 0)
            "c": [m if n else 0.0 for m, _, n in ms],
            "buf": [float(m != 0 and not n) for m, _, n in ms],
        }

    def _update(self) -> None:
        """torch.optim.SGD's single-tensor update, each op applied to every parameter at
        once (``torch._foreach_*``: the same kernels, one Python call)."""
        h = self._host
        on = [m != 0 for m in h["momentum"]]
        use_buf = [a and not n for a, n in zip(on, h["nesterov"], strict=True)]
        params = [p for p in self.params if p.grad is not None]
        if params:
            self._move(params, on, use_buf)
        self._count_step()
        started = [s or a for s, a in zip(h["momentum_started"], on, strict=True)]
        if started != h["momentum_started"]:
            self.param_groups[0]["momentum_started"] = torch.tensor(started)
            self._sync()

    def _move(self, params: list[Tensor], on: list[bool], use_buf: list[bool]) -> None:
        grads = [p.grad for p in params]
        if any(wd != 0 for wd in self._host["weight_decay"]):
            grads = torch._foreach_addcmul(grads, params, self._per_param(params, "wd"))
        if any(on):
            bufs = [self._buffers(p, "momentum_buffer")[0] for p in params]
            torch._foreach_mul_(bufs, self._per_param(params, "a"))
            torch._foreach_addcmul_(bufs, grads, self._per_param(params, "b"))
            if all(use_buf):
                grads = bufs
            else:
                mixed = torch._foreach_addcmul(grads, bufs, self._per_param(params, "c"))
                picks = zip(self._per_param(params, "buf"), bufs, mixed, strict=True)
                grads = (
                    mixed if not any(use_buf) else [torch.where(u != 0, b, m) for u, b, m in picks]
                )
        torch._foreach_addcmul_(params, grads, self._per_param(params, "neg_lr"))
