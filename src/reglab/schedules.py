"""Per-member schedules of a stack: each member's learning rate follows its own epochs
(:class:`MemberSchedules`) and its momentum its own steps (:func:`momentum_at`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch


def momentum_at(step: int, start: float, end: float, steps: int) -> float:
    """Momentum (SGD) or beta1 (Adam) after ``step`` updates of a linear ramp (Srivastava 2014)."""
    t = min(1.0, step / max(1, steps))
    return start + t * (end - start)


class MemberSchedules:
    """One torch lr scheduler per member, stepped at the end of that member's own epochs.

    Each runs on a private one-parameter ``torch.optim.SGD`` starting at the member's base lr,
    so torch's own schedule arithmetic is reused. ``make_scheduler``: the partial
    conf/scheduler/*.yaml gives (it takes the optimizer), or None for a constant lr.
    """

    def __init__(
        self,
        make_scheduler: Callable[[torch.optim.Optimizer], Any] | None,
        base_lrs: Iterable[float],
    ) -> None:
        self.make_scheduler = make_scheduler
        self._members = [self._new(lr) for lr in base_lrs]

    def _new(self, base_lr: float) -> tuple[torch.optim.Optimizer, Any]:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(base_lr))
        scheduler = self.make_scheduler(opt) if self.make_scheduler is not None else None
        opt.step()  # no grad: a no-op that tells the scheduler the optimizer has stepped
        return opt, scheduler

    def __len__(self) -> int:
        return len(self._members)

    def epoch_end(self, k: int, metric: float | None = None) -> None:
        """Member ``k`` finished an epoch (``metric`` for ReduceLROnPlateau)."""
        scheduler = self._members[k][1]
        if scheduler is not None:
            scheduler.step() if metric is None else scheduler.step(metric)

    def lrs(self) -> list[float]:
        return [float(opt.param_groups[0]["lr"]) for opt, _ in self._members]

    def keep(self, idx: Sequence[int]) -> None:
        """Keep only members ``idx``, in that order."""
        self._members = [self._members[int(i)] for i in idx]

    def state_dict_member(self, k: int) -> dict[str, Any]:
        opt, scheduler = self._members[k]
        return {"optimizer": opt.state_dict(), "scheduler": scheduler and scheduler.state_dict()}

    def load_state_dict_member(self, k: int, state: dict[str, Any]) -> None:
        opt, scheduler = self._members[k]
        opt.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
