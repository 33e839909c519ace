"""Per-member training sums: loss, errors and penalty summed on the device."""

from __future__ import annotations

import torch


class TrainSums:
    """Per-member training sums, kept on the device and read once an epoch or evaluation.

    ``self.log`` or ``.item()`` every step would cost as much as a small net's step. A step
    writes its four figures into one preallocated row and adds that row to both sums at
    once (``table``: (2, 4, K) float64, the epoch's then the since-evaluation sums): five
    small ops per step and no host synchronization.
    """

    FIELDS = ("loss", "wrong", "penalty", "count")  # loss and penalty summed times batch size
    WHICH = ("epoch", "since_eval")

    def __init__(self, members: int, device: torch.device) -> None:
        self.table = torch.zeros(2, 4, members, device=device, dtype=torch.float64)
        self._row = torch.zeros(4, members, device=device)  # a step's figures (float32)

    def add(self, data_loss, wrong, penalty, n: int) -> None:
        row = self._row
        torch.mul(data_loss.detach(), n, out=row[0])
        row[1].copy_(wrong)
        if penalty is None:
            row[2].zero_()
        else:
            torch.mul(penalty.detach(), n, out=row[2])
        row[3].fill_(n)
        self.table.add_(row)  # both sums: broadcast over the table's first axis

    def to(self, device) -> TrainSums:
        self.table, self._row = self.table.to(device), self._row.to(device)
        return self

    def take(self, which: str, k: int) -> dict[str, float]:
        """Member k's sums of ``which`` (epoch, since_eval), which then restart from 0."""
        table = self.table[self.WHICH.index(which)]
        values = dict(zip(self.FIELDS, table[:, k].tolist(), strict=True))
        table[:, k] = 0
        return values

    def member(self, k: int) -> dict[str, torch.Tensor]:
        return {which: self.table[i, :, k].cpu() for i, which in enumerate(self.WHICH)}

    def load(self, k: int, state: dict[str, torch.Tensor]) -> None:
        for i, which in enumerate(self.WHICH):
            self.table[i, :, k] = state[which].to(self.table)

    def keep(self, idx: torch.Tensor) -> None:
        self.table = self.table.index_select(2, idx)
        self._row = self._row.index_select(1, idx)
