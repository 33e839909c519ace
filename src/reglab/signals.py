"""Stopping training cleanly on a signal (kill, Ctrl-C, SLURM pre-emption and time limits)."""

from __future__ import annotations

import signal
import threading


class Signals:
    """SIGTERM (kill, SLURM), SIGINT (Ctrl-C) and SIGUSR2 (submitit's warning before a time
    limit or pre-emption) stop training after the current step; a second Ctrl-C at once.
    SIGUSR2's earlier handler (submitit's requeue) runs once the checkpoints are saved."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> Signals:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            if handler is not None:
                signal.signal(sig, handler)

    def hand_over(self) -> None:
        previous = self.previous.get(signal.SIGUSR2)
        if self.received == signal.SIGUSR2 and callable(previous):
            previous(signal.SIGUSR2, None)  # submitit: requeue this job, then exit
