"""One seed, independent random streams.

A run's ``seed`` fixes every source of randomness, but each source draws from its own
stream so that changing one (say, the data-set size) does not reshuffle another (say, the
dropout masks). Streams are derived with NumPy's ``SeedSequence``, which is designed for
exactly this: statistically independent children of one entropy source.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch


class Stream(IntEnum):
    """The random streams of a run; the value is the stream's spawn key."""

    SPLIT = 1  # validation hold-out
    SUBSET = 2  # training subset (data.train_size)
    CORRUPTION = 3  # label / pixel corruption (Zhang et al. 2017 §2.1)
    ORDER = 4  # mini-batch order, one permutation per epoch
    INIT = 5  # weight initialisation
    DROPOUT = 6  # dropout masks


def stream_seed(seed: int, stream: Stream, *extra: int) -> int:
    """A 63-bit seed for ``stream`` of run ``seed`` (``extra`` e.g. the epoch)."""
    state = np.random.SeedSequence([int(seed), int(stream), *map(int, extra)]).generate_state(2)
    return int((int(state[0]) << 32 | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF)


def generator(seed: int, stream: Stream, *extra: int, device: str | torch.device = "cpu"):
    """A ``torch.Generator`` on ``device`` seeded for ``stream``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(stream_seed(seed, stream, *extra))
    return gen
