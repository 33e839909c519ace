"""Per-member training sums: loss, errors and penalty summed on the device."""

from __future__ import annotations

import torch


class TrainSums:
    """Per-member training sums, kept on the device and read once an epoch or evaluation.

    ``self.log`` or ``.item()`` every step would cost as much as a small net's step; these
    are two in-place adds per step and no host synchronization.
    """

    FIELDS = ("loss", "wrong", "penalty", "count")  # loss and penalty summed times batch size

    def __init__(self, members: int, device: torch.device) -> None:
        self.epoch = torch.zeros(4, members, device=device, dtype=torch.float64)
        self.since_eval = torch.zeros_like(self.epoch)

    def add(self, data_loss, wrong, penalty, n: int) -> None:
        extra = torch.zeros_like(data_loss) if penalty is None else penalty.detach()
        step = torch.stack(
            [data_loss.detach() * n, wrong.float(), extra * n, torch.full_like(data_loss, n)]
        )
        self.epoch.add_(step)
        self.since_eval.add_(step)

    def to(self, device) -> TrainSums:
        self.epoch, self.since_eval = self.epoch.to(device), self.since_eval.to(device)
        return self

    def take(self, which: str, k: int) -> dict[str, float]:
        """Member k's sums of ``which`` (epoch, since_eval), which then restart from 0."""
        table = getattr(self, which)
        values = dict(zip(self.FIELDS, table[:, k].tolist(), strict=True))
        table[:, k] = 0
        return values

    def member(self, k: int) -> dict[str, torch.Tensor]:
        return {"epoch": self.epoch[:, k].cpu(), "since_eval": self.since_eval[:, k].cpu()}

    def load(self, k: int, state: dict[str, torch.Tensor]) -> None:
        self.epoch[:, k] = state["epoch"].to(self.epoch)
        self.since_eval[:, k] = state["since_eval"].to(self.since_eval)

    def keep(self, idx: torch.Tensor) -> None:
        self.epoch = self.epoch.index_select(1, idx)
        self.since_eval = self.since_eval.index_select(1, idx)
