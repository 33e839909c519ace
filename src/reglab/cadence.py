"""When a stack's members evaluate and checkpoint: by work done, not by epoch.

- **Evaluations** follow Lightning's rule on the trainer's keys: every
  ``val_check_interval`` updates of the run when ``check_val_every_n_epoch`` is null (the
  default: 500 updates, an epoch of MNIST's 50k training images, however small the
  training set), else every ``val_check_interval`` batches of every
  ``check_val_every_n_epoch``-th epoch, or at its end. Every run also evaluates at its end.
- **Checkpoints** (``checkpoint.*``) every ``every_n_steps`` updates of a member, and
  every ``every_minutes`` of wall time for the whole stack, and on a signal
  (:mod:`reglab.signals`). Neither changes a result: a resumed run ends with the metrics
  of an uninterrupted one.
"""

from __future__ import annotations

import time


class Cadence:
    """The evaluation and checkpoint schedule of one stack (settings from ``reglab.run``)."""

    def __init__(self, settings) -> None:
        self.s = settings
        checkpoint = settings.checkpoint
        self.enabled = bool(checkpoint.enabled)
        self.every_n_steps = checkpoint.every_n_steps
        minutes = checkpoint.every_minutes
        self.every_s = None if minutes is None else float(minutes) * 60.0
        self.saved_at = time.monotonic()

    def eval_due(self, step: int, nb: int) -> bool:
        """Is an evaluation due after ``step`` updates of a member whose epoch is ``nb``?"""
        s = self.s
        epoch, batch = (step - 1) // nb, (step - 1) % nb
        if s.check_val_every_n_epoch is not None and (epoch + 1) % s.check_val_every_n_epoch:
            return False
        interval = s.val_check_interval
        if interval is None or isinstance(interval, float):
            every = max(1, int(nb * (interval or 1.0)))
            return (batch + 1) % every == 0
        current = step - 1 if s.check_val_every_n_epoch is None else batch
        return (current + 1) % interval == 0

    def checkpoint_due(self, step: int) -> bool:
        """Is a member's step checkpoint due (``every_n_steps``)?"""
        return self.enabled and bool(self.every_n_steps) and step % self.every_n_steps == 0

    def time_due(self) -> bool:
        """Has ``every_minutes`` passed since the last timed checkpoint? (Then restarts.)"""
        if not self.enabled or self.every_s is None:
            return False
        now = time.monotonic()
        if now - self.saved_at < self.every_s:
            return False
        self.saved_at = now
        return True
