"""The data of a stack: one shared image tensor, each member's own rows, labels and order.

Every member of a stack loads its data with its own seed (:class:`TensorDataModule`): its
validation hold-out, training subset, corruption and normalization constants. Images that
are the data set's own are then kept once, in a shared ``base`` tensor (uint8, moved to the
training device once); a member keeps only the rows it uses. Only pixel corruptions give a
member private images, appended to the base. A training step gathers every member's batch
with one ``index_select`` of uint8 rows and normalizes it with that member's constants.

A member's batch at its step s is a pure function of (its seed, s): epoch s // nb, batch
s % nb of that epoch's permutation (the same ``EpochPermutation`` a solo run uses), so it
does not depend on the other members or on where training was resumed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytorch_lightning as pl
import torch

from reglab import timing
from reglab.data.batches import EpochPermutation
from reglab.data.datamodule import TensorDataModule
from reglab.data.sources import RawData, Split
from reglab.seeding import Stream, stream_seed

SPLITS = ("train", "val", "test")


def _padded(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """(K, max n) int64, each row padded with its own last entry (never read)."""
    width = max(len(r) for r in rows)
    out = torch.zeros(len(rows), max(width, 1), dtype=torch.int64)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r
    return out


class StackData:
    """Rows, labels and normalization of K members over one shared image tensor."""

    def __init__(
        self, members: Sequence[TensorDataModule], prepared: RawData, device: torch.device
    ) -> None:
        first = members[0]
        self.device = device
        self.batch_size = first.batch_size
        self.eval_batch_size = first.eval_batch_size
        self.normalize = first.normalize
        self.eval_train_set = first.eval_train_set
        self.num_classes = first.num_classes
        self.input_shape = first.input_shape
        self.sizes = {s: [len(m.splits[s]) for m in members] for s in SPLITS}
        self.label_noise = [m.label_noise for m in members]
        # The base: the data set's own images (train then test), then private images.
        parts = [torch.cat([prepared.train.images, prepared.test.images])]
        offset = len(parts[0])
        rows: dict[str, list[torch.Tensor]] = {s: [] for s in SPLITS}
        for m in members:
            for s in SPLITS:
                split: Split = m.splits[s]
                if split.rows is not None:
                    rows[s].append(split.rows)
                else:  # a pixel corruption's own images
                    parts.append(split.images)
                    rows[s].append(torch.arange(offset, offset + len(split)))
                    offset += len(split)
        if any(p.dtype != torch.uint8 for p in parts):
            parts = [p.float() for p in parts]
        self.base = torch.cat(parts).to(device)
        self.rows = {s: _padded(rows[s]).to(device) for s in SPLITS}
        self.labels = {s: _padded([m.splits[s].labels for m in members]).to(device) for s in SPLITS}
        self.scale = torch.stack([m.scale.view(-1) for m in members]).to(device)  # (K, C)
        self.shift = torch.stack([m.shift.view(-1) for m in members]).to(device)
        self.order_seeds = [stream_seed(m.seed, Stream.ORDER) for m in members]
        self.batches_per_epoch = [-(-n // self.batch_size) for n in self.sizes["train"]]
        self._nb = torch.tensor(self.batches_per_epoch, device=device)
        # every member's training set a multiple of the batch size: all batches full
        self.full_batches = all(n % self.batch_size == 0 for n in self.sizes["train"])
        self._orders: list[tuple[int, torch.Tensor]] = [(-1, torch.empty(0))] * len(members)
        self._order_rows = torch.zeros_like(self.rows["train"])
        self._order_labels = torch.zeros_like(self.labels["train"])
        # Inputs that do not depend on the member, computed once: with the same constants
        # for all (unit, per_image), the test set is normalized once for the stack's life,
        # and per-image whitening reads each base image's mean and std instead of reducing
        # every batch.
        self.same_constants = bool(
            torch.equal(self.scale, self.scale[:1].expand_as(self.scale))
            and torch.equal(self.shift, self.shift[:1].expand_as(self.shift))
        )
        self._shared: dict[str, torch.Tensor | None] = {}
        self._image_stats: tuple[torch.Tensor, torch.Tensor] | None = None
        self.steps = [0] * len(members)  # each member's position: its optimizer steps
        self.steps_t: torch.Tensor | None = None  # the same on the device, kept in step

    def __len__(self) -> int:
        return len(self.order_seeds)

    def keep(self, members: torch.Tensor) -> None:
        """Keep only ``members`` (indices into the current members), in that order."""
        idx = members.tolist()
        for table in (self.rows, self.labels):
            for s in SPLITS:
                table[s] = table[s].index_select(0, members.to(self.device))
        for key in SPLITS:
            self.sizes[key] = [self.sizes[key][k] for k in idx]
        self.label_noise = [self.label_noise[k] for k in idx]
        self.scale, self.shift = (
            self.scale[members.to(self.device)],
            self.shift[members.to(self.device)],
        )
        self.order_seeds = [self.order_seeds[k] for k in idx]
        self.batches_per_epoch = [self.batches_per_epoch[k] for k in idx]
        self._nb = self._nb.index_select(0, members.to(self.device))
        self.full_batches = all(n % self.batch_size == 0 for n in self.sizes["train"])
        self._orders = [self._orders[k] for k in idx]
        self._order_rows = self._order_rows.index_select(0, members.to(self.device))
        self._order_labels = self._order_labels.index_select(0, members.to(self.device))
        self.steps = [self.steps[k] for k in idx]
        self.steps_t = None

    # -- training batches ------------------------------------------------------------------
    def start_at(self, k: int, step: int) -> None:
        """Member k resumes at ``step`` (its checkpoint's)."""
        self.steps[k] = step
        self.steps_t = None

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's batch at its current step (:meth:`advance` moves on)."""
        if self.steps_t is None:
            self.steps_t = torch.tensor(self.steps, device=self.device)
        return self.train_batch(self.steps, self.steps_t, self.step_length())

    def advance(self) -> None:
        """Every member took its step."""
        self.steps = [s + 1 for s in self.steps]
        self.steps_t += 1

    def step_length(self) -> int:
        """The members' common batch size at their current steps."""
        if self.full_batches:
            return self.batch_size
        lengths = {self.batch_length(k, s) for k, s in enumerate(self.steps)}
        if len(lengths) != 1:
            raise RuntimeError("members' batches differ in size; plan them apart")
        return lengths.pop()

    def batch_length(self, k: int, step: int) -> int:
        """The size of member k's batch at its step ``step`` (smaller at an epoch's end)."""
        n, nb = self.sizes["train"][k], self.batches_per_epoch[k]
        position = step % nb
        return min(self.batch_size, n - position * self.batch_size)

    def _epoch_order(self, k: int, epoch: int) -> None:
        """Member k's rows and labels in the order of its ``epoch``."""
        n = self.sizes["train"][k]
        sampler = EpochPermutation(n, self.order_seeds[k])
        sampler.set_epoch(epoch)
        perm = sampler.indices().to(self.device)
        self._order_rows[k, :n] = self.rows["train"][k, :n].index_select(0, perm)
        self._order_labels[k, :n] = self.labels["train"][k, :n].index_select(0, perm)
        self._orders[k] = (epoch, perm)

    def train_batch(
        self, steps: Sequence[int], steps_t: torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (K, B, C, H, W) normalized and labels (K, B) of every member at its step
        (``steps`` on the host, ``steps_t`` the same on the device: no copy per step)."""
        for k, step in enumerate(steps):
            nb = self.batches_per_epoch[k]
            if self._orders[k][0] != step // nb:  # a new epoch: its permutation
                self._epoch_order(k, step // nb)
        nbs = self.batches_per_epoch
        starts = {step % nb * self.batch_size for step, nb in zip(steps, nbs, strict=True)}
        if len(starts) == 1:  # every member at the same place in its epoch: a slice
            start = starts.pop()
            rows = self._order_rows[:, start : start + length]
            labels = self._order_labels[:, start : start + length].clone()  # outlives epochs
        else:
            index = ((steps_t % self._nb) * self.batch_size).unsqueeze(1)
            index = index + torch.arange(length, device=self.device)
            rows = self._order_rows.gather(1, index)
            labels = self._order_labels.gather(1, index)
        return self.to_input(self._images(rows), rows=rows), labels

    # -- evaluation batches ----------------------------------------------------------------
    def eval_batches(
        self, split: str, members: torch.Tensor, limit: int | None = None, chunk: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(images, labels, valid) chunks of ``split`` for ``members`` in order; ``valid``
        (k, b) marks real examples (members' splits may differ in size)."""
        source = "train" if split == "train_eval" else split
        sizes = torch.tensor([self.sizes[source][k] for k in members.tolist()], device=self.device)
        n = int(sizes.max()) if len(sizes) else 0
        if limit is not None:
            n = min(n, limit)
        rows_all = self.rows[source].index_select(0, members)
        labels_all = self.labels[source].index_select(0, members)
        shared = self._shared_inputs(source)
        chunk = chunk or self.eval_batch_size
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            rows, labels = rows_all[:, start:stop], labels_all[:, start:stop]
            valid = torch.arange(start, stop, device=self.device) < sizes.unsqueeze(1)
            if shared is not None:  # one copy, every member's view of it
                x = shared[:, start:stop].expand(len(members), -1, -1, -1, -1)
            else:
                x = self.to_input(self._images(rows), members, rows=rows)
            yield x, labels, valid

    def _shared_inputs(self, split: str) -> torch.Tensor | None:
        """The test set's inputs (1, N, C, H, W), normalized once, if every member has
        its rows (no pixel corruption of test images) and the same constants; else None.
        The same values ``to_input`` gives (``stacking.estimate_shared_bytes`` counts them)."""
        if split != "test":
            return None
        if split not in self._shared:  # the answer, None included, is computed once
            rows = self.rows[split]
            n = min(self.sizes[split], default=0)
            same = self.same_constants and n and n == max(self.sizes[split])
            if not (same and torch.equal(rows, rows[:1].expand_as(rows))):
                self._shared[split] = None
                return None
            first = torch.zeros(1, dtype=torch.int64, device=self.device)
            self._shared[split] = torch.cat([
                self.to_input(self._images(r), first, rows=r)
                for r in rows[:1, :n].split(self.eval_batch_size, dim=1)
            ], dim=1)  # fmt: skip
        return self._shared[split]

    # -- images ----------------------------------------------------------------------------
    def _images(self, rows: torch.Tensor) -> torch.Tensor:
        """Base images at ``rows`` (k, b): one gather, still on the pixel scale."""
        k, b = rows.shape
        return self.base.index_select(0, rows.reshape(-1)).view(k, b, *self.base.shape[1:])

    def to_input(
        self,
        images: torch.Tensor,
        members: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pixels (K, B, C, H, W) → normalized float32, each member with its own constants
        (as ``TensorDataModule.to_input`` does for one member); ``rows``: the base rows
        they came from, whose per-image statistics are then read, not recomputed."""
        scale, shift = self.scale, self.shift
        if members is not None:
            scale, shift = scale.index_select(0, members), shift.index_select(0, members)
        shape = (scale.shape[0], 1, scale.shape[1], 1, 1)
        x = images.to(torch.float32)  # then in place (a uint8 × float product: 1.4× slower)
        x = x.mul_(scale.view(shape)) if images.dtype == torch.uint8 else x * scale.view(shape)
        if self.normalize == "per_image":  # Zhang et al. App. A: per-image whitening
            if rows is not None and self.same_constants:
                means, stds = self.image_stats()
                mean, std = means[rows], stds[rows]
            else:
                mean, std = per_image_stats(x)
            return x.sub_(mean.view(*mean.shape, 1, 1, 1)).div_(std.view(*std.shape, 1, 1, 1))
        return x.add_(shift.view(shape))

    def image_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each base image's mean and (clamped) std on the input scale, computed once."""
        if self._image_stats is None:
            scale = self.scale[:1].view(1, 1, -1, 1, 1)
            parts = [  # out of place: a float32 base (Gaussian pixels) must stay as it is
                per_image_stats(chunk.unsqueeze(0).to(torch.float32) * scale)
                for chunk in self.base.split(self.eval_batch_size)
            ]
            self._image_stats = (
                torch.cat([m[0] for m, _ in parts]),
                torch.cat([s[0] for _, s in parts]),
            )
        return self._image_stats


def per_image_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of each image of ``x`` (K, B, C, H, W), the std at least 1/√pixels."""
    flat = x.flatten(2)
    return flat.mean(dim=2), flat.std(dim=2).clamp_min(1.0 / flat.shape[2] ** 0.5)


class _TrainBatches:
    """Endless training batches of a stack, each drawn when asked for (no prefetch: a
    member may leave the stack between two steps)."""

    def __init__(self, data: StackData) -> None:
        self.data = data

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.data.next_batch()


class _EvalBatches:
    def __init__(self, data: StackData, split: str) -> None:
        self.data, self.split = data, split

    def __iter__(self):
        members = torch.arange(len(self.data), device=self.data.device)
        return self.data.eval_batches(self.split, members)


class StackDataModule(pl.LightningDataModule):
    """The stack's data for Lightning: each member's splits (loaded ``TensorDataModule``\\ s
    sharing ``prepared``), held on the training device as one :class:`StackData`.

    ``train_dataloader`` is endless: each member's batch at its own step; a run ends by
    its members' own limits (:class:`reglab.callbacks.MemberRuns`) or the Trainer's.
    ``val``/``test_dataloader`` give (images, labels, valid) chunks of every member.
    """

    def __init__(self, members: Sequence[TensorDataModule], prepared: RawData) -> None:
        super().__init__()
        self.members, self.prepared = list(members), prepared
        self.data: StackData | None = None

    @classmethod
    def from_configs(cls, configs) -> StackDataModule:
        """Load each composed config's data (a notebook: ``[cfg]``)."""
        from hydra.utils import instantiate

        from reglab.data import sources
        from reglab.resolvers import register

        register()  # the configs may use reglab's resolvers
        first = configs[0].data
        raw = sources.load(first.name, first.root, first.download)
        modules = [
            instantiate(c.data, corruption=instantiate(c.corruption), seed=c.seed) for c in configs
        ]
        prepared = modules[0].prepare(raw)
        return cls([m.load(prepared) for m in modules], prepared)

    def setup(self, stage: str) -> None:
        device = self.trainer.strategy.root_device if self.trainer is not None else "cpu"
        if self.data is None or self.data.device != torch.device(device):
            with timing.phase("data"):
                self.data = StackData(self.members, self.prepared, torch.device(device))

    def train_dataloader(self):
        return _TrainBatches(self.data)

    def val_dataloader(self):
        return _EvalBatches(self.data, "val")

    def test_dataloader(self):
        return _EvalBatches(self.data, "test")

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch  # already there
