"""The bench's arms: one measurement each, in a fresh worker process (``bench.py --worker``).

Every arm trains the same model on the same MNIST rows for ``warmup + steps`` optimizer
steps and reports the wall and process-CPU time of the ``steps`` after the warm-up:

* ``reglab``: the real path, :func:`reglab.run.run_stack` on K jobs that differ in their
  seed (K = 1 is what ``reglab-train`` runs): ``StackedClassifier.training_step`` driven by
  Lightning's Trainer with reglab's callbacks, timed by one more Lightning callback from the
  jobs' ``callbacks`` config (:func:`step_clock`, the ``lightning`` arm's clock); the run
  is stopped once the clock has stopped;
* ``direct``: ``reglab`` at K = 1 with ``vmap_solo=false`` (the net as written: no vmap,
  no ``VmapOrder``);
* ``bare``: the floor, the solo model (reglab's builder, so the same init), optimizer and
  batch size in a plain loop over a float32 copy of the training split, ``randperm``
  indexing, forward / loss / backward / step and nothing else;
* ``lightning``: Lightning's floor, the bare loop's model, optimizer and tensors in a
  minimal LightningModule under a Trainer with no logger, checkpoint or validation;
* ``dataloader``: what templates do, torchvision's ``MNIST`` with ``ToTensor`` and
  ``Normalize`` through a ``DataLoader`` into the minimal LightningModule.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the templates' normalisation constants


def compose(overrides: list[str], out_dir: Path | None = None, conf: Path = CONF):
    """The config ``reglab-train`` would run with (reglab's resolvers registered);
    CSV/TensorBoard loggers into ``out_dir``."""
    from reglab.resolvers import compose as reglab_compose

    cfg = reglab_compose(overrides, config_dir=str(conf))
    for logger in (cfg.get("logger") or {}).values():  # ${hydra:runtime.output_dir} otherwise
        if "save_dir" in logger:
            logger.save_dir = str(out_dir)
    return cfg


def sync_for(device: str):
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


class Clock:
    """Wall and process-CPU seconds of the timed steps, device synced at both ends.

    ``lap()`` after each timed step marks its end; the steps fall into ``BLOCKS`` equal
    blocks and ``step_s`` is the best block's wall time per step (``mean_step_s`` the
    whole span's): on a shared machine a neighbour's burst slows some blocks of one arm
    and not another, and the best block of each arm is the figure that compares alike
    (``timeit``'s rule). The CPU time is the whole span's. On CUDA (asynchronous steps)
    there are no laps: ``step_s`` is the mean."""

    BLOCKS = 5

    def __init__(self, device: str) -> None:
        self.sync = sync_for(device)
        self.laps = not device.startswith("cuda")
        self.calls = 0
        self.wall = self.cpu = None
        self.marks: list[float] = []

    def start(self) -> None:
        self.sync()
        self._t, self._c = time.perf_counter(), time.process_time()
        self.marks = [self._t]

    def lap(self) -> None:
        if self.laps:
            self.marks.append(time.perf_counter())

    def stop(self) -> None:
        self.sync()
        self.wall, self.cpu = time.perf_counter() - self._t, time.process_time() - self._c

    def best_step_s(self, steps: int) -> float:
        """The best block's seconds per step (the mean without laps)."""
        if len(self.marks) != steps + 1:
            return self.wall / steps
        size = max(1, steps // self.BLOCKS)
        ends = range(size, steps + 1, size)
        return min(self.marks[e] - self.marks[e - size] for e in ends) / size

    def row(self, spec: dict, **extra: Any) -> dict:
        if self.wall is None:
            raise RuntimeError(f"{spec['arm']}/{spec['model']}: training ended before the clock")
        steps = spec["steps"]
        return {"step_s": self.best_step_s(steps), "mean_step_s": self.wall / steps,
                "cpu_s": self.cpu / steps, "steps": steps, **extra}  # fmt: skip


def solo_data(cfg):
    """A solo run's data module, loaded (hold-out, subset, corruption, normalisation)."""
    from hydra.utils import instantiate

    return instantiate(cfg.data, corruption=instantiate(cfg.corruption), seed=cfg.seed).load()


def solo_model(cfg, dm):
    """The run's own network (its init stream: the same weights; its dropout layers)."""
    from reglab.classifier import build_model

    return build_model(cfg, dm.input_shape, dm.num_classes)


class FloorBatches:
    """The floors' batches: the training split as normalised float32 once, then one
    permutation per epoch and one gather per step (what a careful plain loop does)."""

    def __init__(self, dm, batch_size: int, device) -> None:
        train = dm.splits["train"]
        self.x = dm.to_input(train.images.to(device))
        self.y = train.labels.to(device)
        self.batch_size, self.device = batch_size, device

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        import torch

        perm = torch.randperm(len(self.y), device=self.device)
        for i in range(0, len(self.y), self.batch_size):
            idx = perm[i : i + self.batch_size]
            yield self.x[idx], self.y[idx]


def arm_bare(spec: dict, out: Path) -> list[dict]:
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    cfg = compose(spec["overrides"], out)
    torch.set_num_threads(spec["threads"])
    # importing Lightning (reglab.data does) sets this: one NVML query per optimizer step
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    device = torch.device(spec["device"])
    dm = solo_data(cfg)
    batches = FloorBatches(dm, cfg.data.batch_size, device)
    model = solo_model(cfg, dm).to(device).train()
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    clock, total = Clock(spec["device"]), spec["warmup"] + spec["steps"]
    while clock.calls < total:
        for x, y in batches:
            if clock.calls == spec["warmup"]:
                clock.start()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            clock.calls += 1
            if clock.calls > spec["warmup"]:
                clock.lap()
            if clock.calls == total:
                clock.stop()
                break
    return [clock.row(spec, members=1)]


def _minimal_module(cfg, dm):
    import pytorch_lightning as pl
    import torch.nn.functional as F
    from hydra.utils import instantiate

    class Minimal(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = solo_model(cfg, dm)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.model(x), y)

        def configure_optimizers(self):
            return instantiate(cfg.optimizer)(params=self.model.parameters())

    return Minimal()


def _lightning_fit(spec: dict, cfg, dm, loader, out: Path) -> list[dict]:
    """The minimal module under a bare Trainer; the clock in two cheap per-batch hooks."""
    import pytorch_lightning as pl

    clock, warmup, total = Clock(spec["device"]), spec["warmup"], spec["warmup"] + spec["steps"]

    class StepClock(pl.Callback):
        def on_train_batch_start(self, trainer, *args) -> None:
            if trainer.global_step == warmup:
                clock.start()

        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step > warmup:
                clock.lap()
            if trainer.global_step == total:
                clock.stop()

    trainer = pl.Trainer(
        accelerator="gpu" if spec["device"].startswith("cuda") else "cpu",
        devices=1,
        max_steps=total,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[StepClock()],
        default_root_dir=str(out),
    )
    trainer.fit(_minimal_module(cfg, dm), train_dataloaders=loader)
    return [clock.row(spec, members=1)]


def arm_lightning(spec: dict, out: Path) -> list[dict]:
    import torch

    cfg = compose(spec["overrides"], out)
    torch.set_num_threads(spec["threads"])
    dm = solo_data(cfg)
    batches = FloorBatches(dm, cfg.data.batch_size, torch.device(spec["device"]))
    return _lightning_fit(spec, cfg, dm, batches, out)


def arm_dataloader(spec: dict, out: Path) -> list[dict]:
    import torch
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    cfg = compose(spec["overrides"], out)
    torch.set_num_threads(spec["threads"])
    dm = solo_data(cfg)  # the very rows reglab trains on (rows < 60000: the training files)
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    )
    mnist = datasets.MNIST(cfg.data.root, train=True, download=False, transform=transform)
    workers = spec.get("dl_workers", 0)
    loader = DataLoader(
        Subset(mnist, dm.splits["train"].rows.tolist()),
        batch_size=cfg.data.batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    return _lightning_fit(spec, cfg, dm, loader, out)


class _Measured(Exception):
    """Raised by :func:`step_clock`'s callback once its clock stopped: the run ends there
    (its members unfinished: no final evaluation, summary or ``model.pt`` to wait for)."""


FOUND: dict[str, Any] = {}  # the last step clock's measurement (Hydra builds the callback)


def step_clock(warmup: int, steps: int, device: str, extras: bool = False):
    """A Lightning callback (``callbacks.step_clock`` of every member's config, so Hydra
    instantiates it beside reglab's own): the wall and CPU time of training steps
    ``warmup + 1 .. warmup + steps`` of the Trainer's loop, from the start of the first
    timed batch to the end of the last (every callback's hooks and Lightning's loop
    between batches included), as the ``lightning`` arm measures its floor. Then the run
    stops (:class:`_Measured`)."""
    import bench_gpu
    import pytorch_lightning as pl

    class StepClock(pl.Callback):
        def __init__(self) -> None:
            self.clock, self.done, self.total = Clock(device), 0, warmup + steps

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            if self.done == warmup:
                self.clock.start()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.done += 1
            if self.done > warmup:
                self.clock.lap()
            if self.done < self.total:
                return
            self.clock.stop()
            runs = next((c for c in trainer.callbacks if type(c).__name__ == "MemberRuns"), None)
            FOUND.update(
                wall=self.clock.wall, cpu=self.clock.cpu, best=self.clock.best_step_s(steps)
            )
            FOUND.update(bench_gpu.describe_stack(module, module.data.batch_size, extras, runs))
            raise _Measured

    FOUND.clear()
    return StepClock()


def member_configs(spec: dict, k: int, out: Path) -> list:
    """K configs: ``spec["jobs"]`` (overrides per member, e.g. Fig. 9a's grid) or seeds
    0..K-1; each with :func:`step_clock` in its ``callbacks``."""
    import copy

    from omegaconf import OmegaConf

    # the against arm's engine with its own conf/ (beside its src/)
    conf = Path(spec["src"]).parent / "conf" if spec.get("src") else CONF
    cfg = compose(spec["overrides"], out, conf)
    clock = {"_target_": f"{__name__}.step_clock", "warmup": spec["warmup"],
             "steps": spec["steps"], "device": spec["device"],
             "extras": bool(spec.get("extras"))}  # fmt: skip
    OmegaConf.update(cfg, "callbacks.step_clock", clock, force_add=True)
    cfgs = []
    for i in range(k):
        member = copy.deepcopy(cfg)
        points = spec["jobs"][i] if spec.get("jobs") else [f"seed={i}"]
        for point in points:
            key, value = point.split("=", 1)
            OmegaConf.update(member, key, OmegaConf.create(f"v: {value}").v, merge=False)
        cfgs.append(member)
    return cfgs


def arm_reglab(spec: dict, out: Path) -> list[dict]:
    """``run_stack`` on K jobs for each K in ``spec["members"]``, in this one process,
    through Lightning's Trainer, timed by :func:`step_clock`."""
    import bench_gpu
    import torch

    from reglab.member import Job
    from reglab.run import run_stack

    cuda = spec["device"].startswith("cuda")
    bandwidth = bench_gpu.measure_bandwidth(spec["device"]) if cuda else None
    rows = []
    for k in spec["members"]:
        jobs = [Job(c, out / f"K{k}" / f"m{i}") for i, c in enumerate(member_configs(spec, k, out))]
        with contextlib.suppress(_Measured):
            run_stack(jobs)
        found = dict(FOUND)
        if not found:
            raise RuntimeError(f"reglab/{spec['model']} K={k}: training ended before the clock")
        wall, cpu, best = found.pop("wall"), found.pop("cpu"), found.pop("best")
        steps = spec["steps"]
        row = {"step_s": best, "mean_step_s": wall / steps, "cpu_s": cpu / steps,
               "steps": steps, "members": k}  # fmt: skip
        row |= found
        if cuda:
            row |= bench_gpu.floor(row["bytes"]["total"], row["step_s"], bandwidth)
            torch.cuda.empty_cache()
        rows.append(row)
    return rows


def arm_direct(spec: dict, out: Path) -> list[dict]:
    """``arm_reglab`` with ``vmap_solo=false``: a stack of one calls its net directly."""
    return arm_reglab(spec | {"overrides": [*spec["overrides"], "vmap_solo=false"]}, out)


ARMS = {
    "reglab": arm_reglab,
    "direct": arm_direct,
    "against": arm_reglab,  # another engine's reglab (bench.py --against: its src first)
    "bare": arm_bare,
    "lightning": arm_lightning,
    "dataloader": arm_dataloader,
}


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM: not inherited across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(spec: dict) -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = ARMS[spec["arm"]](spec, Path(spec["out"]))
    return {"arm": spec["arm"], "model": spec["model"], "rows": rows, "peak_rss_mb": peak_rss_mb()}
