"""Where a stack's wall time goes: seconds per phase, in each member's ``summary.json``.

``run_stack`` starts a :class:`PhaseClock` per stack; the engine switches phase around
what it does (``with phase("eval"): ...``, nested phases return to the outer one):

* ``startup_s``: from the process's start (or the end of its previous stack) to the first
  training step, but for the data: imports, config, locks, the module, the Trainer;
* ``data_s``: reading, preparing and moving the data (``reglab.run._load_data``,
  ``StackDataModule.setup``);
* ``train_s``: training steps, with Lightning's loop and the per-step bookkeeping;
* ``eval_s``: evaluations and final metrics;
* ``write_s``: checkpoints, summaries, ``model.pt``, opening and closing loggers.

``summary.json``'s ``timing`` holds the stack's seconds (shared by its members, ``stack.id``)
up to when that summary was written; ``make bench ARGS="--only sweeps"`` sums them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = ("startup", "data", "train", "eval", "write")
_last_end: float | None = None  # when this process's previous stack ended
_clock: PhaseClock | None = None


def process_start() -> float:
    """This process's start (epoch seconds; Linux ``/proc``), else now."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


class PhaseClock:
    """Seconds spent in each of :data:`PHASES` since ``origin`` (epoch seconds)."""

    def __init__(self, origin: float) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.phase, self.mark = "startup", origin

    def to(self, phase: str) -> str:
        """Switch to ``phase``; returns the phase left."""
        now = time.time()
        self.seconds[self.phase] += now - self.mark
        left, self.phase, self.mark = self.phase, phase, now
        return left

    def snapshot(self) -> dict[str, float]:
        """``{"startup_s": ..., ...}`` up to now."""
        seconds = dict(self.seconds)
        seconds[self.phase] += time.time() - self.mark
        return {f"{k}_s": round(v, 3) for k, v in seconds.items()}


def start() -> PhaseClock:
    """A new stack's clock, from the end of this process's previous stack (or its start)."""
    global _clock
    _clock = PhaseClock(_last_end if _last_end is not None else process_start())
    return _clock


def end() -> None:
    """The stack is done: the next stack's start-up begins now."""
    global _clock, _last_end
    _clock, _last_end = None, time.time()


def to(phase: str) -> None:
    """Switch the current stack's clock to ``phase`` (nothing without a stack)."""
    if _clock is not None:
        _clock.to(phase)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as ``name``, then go back to the phase before."""
    clock = _clock
    if clock is None:
        yield
        return
    left = clock.to(name)
    try:
        yield
    finally:
        clock.to(left)


def snapshot() -> dict[str, float] | None:
    return None if _clock is None else _clock.snapshot()
