#!/usr/bin/env python
"""reglab against a bare PyTorch loop and the usual DataLoader path (``make bench``).

Four ways to train the same model on the same MNIST images, each in its own process:

* ``reglab``: the real path — the config composed from ``conf/`` with overrides and run by
  :func:`reglab.run.run` (its builders, Trainer config, CSV logger, checkpoints, progress
  bar, validation and activation probe), with one timing callback added;
* ``bare``: the floor — the same model object (built by ``reglab.run.build_model``, so the
  same init), optimizer and batch size; whole split pre-converted to normalised float32,
  ``torch.randperm`` indexing, forward / loss / backward / step, nothing else;
* ``lightning``: Lightning's own floor — the bare loop's model, optimizer and tensors in a
  minimal LightningModule under a Trainer with no logger, callbacks, checkpoints or
  validation: what Lightning's automatic-optimization loop costs by itself;
* ``dataloader``: what Lightning templates do — torchvision's ``MNIST`` with ``ToTensor``
  and ``Normalize`` through a ``DataLoader`` (``num_workers=0`` unless ``--dl-workers``)
  into reglab's LightningModule and the same Trainer config.

The epoch time is the median over the measured epochs (the first ``--warmup`` epochs are
left out) of the time from ``on_train_epoch_start`` to ``on_train_epoch_end`` minus the
validation inside it; validation and the epoch-end work (checkpoint, loggers) are reported
apart. Each figure is also taken in process CPU time (all threads), which a busy machine
disturbs far less than wall time; the JSON has both (``*_cpu`` ratios). The bare loop
runs without the ``PYTORCH_NVML_BASED_CUDA_CHECK`` that importing Lightning sets (a plain
script does not have it; with it, every optimizer step makes an NVML query).

Also measured: ``reglab-train`` from process start to its first training step, the peak RSS
of every process, and the wall time of one quick-scale sweep (``--sweep EXP``). The last
line printed is one JSON object, for tracking the figures over time.

Workers run attached to a pseudo-terminal (``--console tty``, as a user at a terminal sees
the progress bar) or to a file (``--console file``, as in a sweep or a batch job).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
RESULT = "BENCH_RESULT "
MARK = "BENCH_MARK "

# (a) the template-sized MLP with batchnorm; (b) Srivastava et al.'s dropout MLP (Fig. 9a).
SMALL = [
    "model=mlp",
    "model.hidden=[64,128,64]",
    "model.batchnorm=true",
    "optimizer=adam",
    "data.batch_size=128",
    "data.val_size=5000",
]
BIG = [
    "model=mlp_2048x3",
    "dropout=standard",
    "optimizer=sgd",
    "data.batch_size=100",
]
# Lightning templates normalise MNIST with these constants.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

PARTS = ("small", "big", "dataloader", "startup", "sweep")
TARGETS = {  # name: (limit, "max" = at most / "min" = at least)
    "small_reglab_over_bare": (1.15, "max"),
    "big_reglab_over_bare": (1.05, "max"),
    "dataloader_over_reglab": (8.0, "min"),
    "startup_s": (5.0, "max"),
}


# --------------------------------------------------------------------------------------
# Workers: one measurement each, in a fresh process (its result: one BENCH_RESULT line),
# or in the parent with --in-process.
# --------------------------------------------------------------------------------------


def _compose(overrides: list[str], out_dir: Path):
    """The config ``reglab-train`` would run with, loggers writing into ``out_dir``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    for logger in (cfg.get("logger") or {}).values():  # ${hydra:runtime.output_dir} otherwise
        if "save_dir" in logger:
            logger.save_dir = str(out_dir)
    return cfg


def _sync(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def _epoch_timer(sync):
    """A callback timing each training epoch, its validation and the epoch-end work."""
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self) -> None:
            self.train: list[float] = []  # epoch start → epoch end, validation excluded
            self.cpu: list[float] = []  # the same in process CPU time (all threads)
            self.val: list[float] = []  # validation inside the epoch
            self.cycle: list[float] = []  # epoch start → next epoch start (or end of fit)
            self.steps: list[int] = []
            self._start = self._val_start = None
            self._val = self._val_cpu = 0.0
            self._step0 = 0

        def _now(self) -> tuple[float, float]:
            sync()
            return time.perf_counter(), time.process_time()

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            now = self._now()
            if self._start is not None:
                self.cycle.append(now[0] - self._start[0])
            self._start, self._val, self._val_cpu = now, 0.0, 0.0
            self._step0 = trainer.global_step  # no per-step hook: it would add overhead

        def on_validation_start(self, trainer, pl_module) -> None:
            self._val_start = self._now()

        def on_validation_end(self, trainer, pl_module) -> None:
            if self._start is not None and self._val_start is not None:
                now = self._now()
                self._val += now[0] - self._val_start[0]
                self._val_cpu += now[1] - self._val_start[1]

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            now = self._now()
            self.train.append(now[0] - self._start[0] - self._val)
            self.cpu.append(now[1] - self._start[1] - self._val_cpu)
            self.val.append(self._val)
            self.steps.append(trainer.global_step - self._step0)

        def on_train_end(self, trainer, pl_module) -> None:
            if self._start is not None:
                self.cycle.append(self._now()[0] - self._start[0])
                self._start = None

    return EpochTimer()


def _figures(spec: dict, train: list[float], **extra: Any) -> dict:
    if not train:
        raise RuntimeError(f"{spec['path']}/{spec['model']}: no training epoch was timed")
    warm = spec["warmup"]
    measured = train[warm:] or train
    result = {
        "path": spec["path"],
        "model": spec["model"],
        "epoch_s": statistics.median(measured),
        "epochs_s": [round(t, 4) for t in train],
        "warmup": warm if len(train) > warm else 0,
    }
    for key, values in extra.items():
        if isinstance(values, list):
            values = values[warm:] or values
            result[key] = statistics.median(values) if values else None
        else:
            result[key] = values
    return result


def _worker_reglab(spec: dict, out_dir: Path) -> dict:
    """The real path: reglab.run.run with the composed config and a timing callback."""
    import reglab.run as reglab_run
    from reglab.validation import validate

    cfg = _compose(spec["overrides"], out_dir)
    validate(cfg)  # as reglab-train does before running
    timer = _epoch_timer(_sync(spec["device"]))
    build_callbacks = reglab_run.build_callbacks

    def with_timer(*args, **kwargs):
        return [*build_callbacks(*args, **kwargs), timer]

    reglab_run.build_callbacks = with_timer
    try:
        summary = reglab_run.run(cfg, out_dir / "run")
    finally:
        reglab_run.build_callbacks = build_callbacks
    n_epochs = len(timer.train)
    cycle = timer.cycle[:n_epochs]
    overhead = [c - t - v for c, t, v in zip(cycle, timer.train, timer.val, strict=False)]
    return _figures(
        spec,
        timer.train,
        cpu_s=timer.cpu,
        val_s=timer.val,
        epoch_end_s=overhead,
        cycle_s=cycle,
        steps=timer.steps[-1] if timer.steps else None,
        test_error=summary["metrics"].get("test_error"),
    )


def _worker_bare(spec: dict, out_dir: Path) -> dict:
    """The floor: the same model and optimizer in a plain loop over float32 tensors."""
    import torch

    import reglab.run  # noqa: F401  (imports Lightning, which sets the variable below)

    cfg = _compose(spec["overrides"], out_dir)
    torch.set_num_threads(spec["threads"])
    # Importing Lightning sets this, which makes every torch.cuda.is_available() — one per
    # optimizer step — an NVML query; a plain script has no Lightning and does not pay it.
    nvml = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    try:
        return _bare_loop(spec, cfg)
    finally:
        if nvml is not None:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = nvml


class FloorBatches:
    """The floors' batches: the training split normalised to float32 once, then one
    permutation per epoch and one gather per step (what a careful plain loop does)."""

    def __init__(self, cfg, device) -> None:
        from reglab.run import build_data

        self.data = build_data(cfg)
        train = self.data.splits["train"]
        self.x = self.data.to_input(train.images.to(device))
        self.y = train.labels.to(device)
        self.batch_size = cfg.data.batch_size
        self.device = device

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        import torch

        perm = torch.randperm(len(self.y), device=self.device)
        for i in range(0, len(self.y), self.batch_size):
            idx = perm[i : i + self.batch_size]
            yield self.x[idx], self.y[idx]


def _bare_loop(spec: dict, cfg) -> dict:
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    from reglab.run import build_model

    device = torch.device(spec["device"])
    sync = _sync(spec["device"])
    batches = FloorBatches(cfg, device)
    model = build_model(cfg, batches.data).to(device)
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    autocast = spec.get("precision", "32-true").startswith("bf16")
    model.train()
    times, cpu, steps = [], [], 0
    for _ in range(spec["warmup"] + spec["epochs"]):
        sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        steps = 0
        for x, y in batches:
            optimizer.zero_grad(set_to_none=True)
            if autocast:
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    loss = F.cross_entropy(model(x), y)
            else:
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            steps += 1
        sync()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return _figures(spec, times, cpu_s=cpu, steps=steps, final_loss=float(loss))


def _worker_lightning(spec: dict, out_dir: Path) -> dict:
    """Lightning's own floor: the bare loop's model, optimizer and tensors in a minimal
    LightningModule (forward and loss, nothing logged) under a Trainer with no logger,
    checkpoint, progress bar or validation. What reglab adds is reglab / lightning."""
    import pytorch_lightning as pl
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    from reglab.run import build_model  # imports Lightning, pops the NVML check

    cfg = _compose(spec["overrides"], out_dir)
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    batches = FloorBatches(cfg, device)

    class Minimal(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = build_model(cfg, batches.data)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.model(x), y)

        def configure_optimizers(self):
            return instantiate(cfg.optimizer)(params=self.model.parameters())

    timer = _epoch_timer(_sync(spec["device"]))
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=spec["precision"],
        max_epochs=spec["warmup"] + spec["epochs"],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        default_root_dir=str(out_dir),
    )
    trainer.fit(Minimal(), train_dataloaders=batches)
    return _figures(spec, timer.train, cpu_s=timer.cpu, steps=timer.steps[-1])


def _worker_dataloader(spec: dict, out_dir: Path) -> dict:
    """The template path: torchvision MNIST + transforms + DataLoader, same module/Trainer."""
    import torch
    from hydra.utils import instantiate
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from reglab.module import Classifier
    from reglab.run import build_callbacks, build_data, build_model
    from reglab.seeding import Stream, generator

    cfg = _compose(spec["overrides"], out_dir)
    torch.set_num_threads(spec["threads"])
    data = build_data(cfg)  # only for the model's input shape and class count
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    )
    dataset = datasets.MNIST(cfg.data.root, train=True, download=False, transform=transform)
    # the very images reglab trains on: the same seeded hold-out (and subset)
    rest = torch.randperm(len(dataset), generator=generator(cfg.seed, Stream.SPLIT))
    rest = rest[cfg.data.val_size :]
    if cfg.data.train_size is not None:
        pick = torch.randperm(len(rest), generator=generator(cfg.seed, Stream.SUBSET))
        rest = rest[pick[: cfg.data.train_size]]
    workers = spec["dl_workers"]
    loader = DataLoader(
        Subset(dataset, rest.tolist()),
        batch_size=cfg.data.batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    model = build_model(cfg, data)
    module = Classifier(
        model,
        instantiate(cfg.optimizer),
        instantiate(cfg.regularizer),
        data.eval_names(),
    )
    timer = _epoch_timer(_sync(spec["device"]))
    callbacks = [*build_callbacks(cfg, out_dir, data), timer]
    loggers = [instantiate(c) for c in cfg.logger.values()] if cfg.get("logger") else False
    trainer = instantiate(
        cfg.trainer, logger=loggers, callbacks=callbacks, default_root_dir=str(out_dir)
    )
    trainer.fit(module, train_dataloaders=loader)
    steps = timer.steps[-1] if timer.steps else None
    return _figures(spec, timer.train, cpu_s=timer.cpu, steps=steps)


WORKERS = {
    "reglab": _worker_reglab,
    "bare": _worker_bare,
    "lightning": _worker_lightning,
    "dataloader": _worker_dataloader,
}


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM: unlike ru_maxrss, not inherited
    from the parent across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(spec: dict) -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = WORKERS[spec["path"]](spec, Path(spec["out"]))
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def worker_main(spec: dict) -> None:
    print(RESULT + json.dumps(measure(spec)), flush=True)


# The startup probe: exactly the ``reglab-train`` console script (``reglab.train:main``),
# with a mark printed when imports are done, when the data is loaded and at the first
# training step, where it exits.
STARTUP_PROBE = """
import os, sys, time
print("BENCH_MARK python", time.time(), flush=True)
import reglab.module, reglab.run
step = reglab.module.Classifier.training_step
def first_step(self, batch, batch_idx):
    print("BENCH_MARK first_step", time.time(), flush=True)
    status = open("/proc/self/status").read() if os.path.exists("/proc/self/status") else ""
    hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    print("BENCH_MARK peak_rss_mb", int(hwm[0]) / 1024 if hwm else "nan", flush=True)
    os._exit(0)  # the start is measured; the rest of the run is not needed
reglab.module.Classifier.training_step = first_step
build_data = reglab.run.build_data
def timed_build_data(cfg):
    print("BENCH_MARK build_data", time.time(), flush=True)
    return build_data(cfg)
reglab.run.build_data = timed_build_data
import reglab.train
print("BENCH_MARK imported", time.time(), flush=True)
sys.argv = ["reglab-train", *sys.argv[1:]]
reglab.train.main()
"""


# --------------------------------------------------------------------------------------
# The parent: spawns the workers one after the other, prints the table and the JSON line.
# --------------------------------------------------------------------------------------


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _spawn(
    cmd: list[str], log: Path, console: str, env: dict, timeout: float, check: bool = True
) -> str:
    """Run ``cmd`` with its output in ``log`` (through a pseudo-terminal if asked)."""
    with log.open("wb") as sink:
        if console == "tty":
            master, slave = pty.openpty()
            env = {**env, "TERM": os.environ.get("TERM", "xterm"), "COLUMNS": "120"}
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env
            )
            os.close(slave)

            def drain() -> None:
                while True:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        return
                    if not chunk:
                        return
                    sink.write(chunk)

            reader = threading.Thread(target=drain, daemon=True)
            reader.start()
            try:
                proc.wait(timeout=timeout)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                reader.join(timeout=5)
                os.close(master)
        else:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout,
                check=False,
            )
    text = log.read_text(errors="replace").replace("\r\n", "\n")
    if check and proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-40:])
        raise RuntimeError(f"{' '.join(cmd[:3])}… exited {proc.returncode}; log {log}:\n{tail}")
    return text


def run_worker(spec: dict, args, env: dict) -> dict:
    out = Path(spec["out"])
    shutil.rmtree(out, ignore_errors=True)  # a completed run there would be skipped
    out.mkdir(parents=True)
    log = out / "worker.log"
    load_before = _load()
    started = time.perf_counter()
    if args.in_process:
        result = measure(spec)
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        text = _spawn(cmd, log, args.console, env, args.timeout)
        lines = [line.split(RESULT, 1)[1] for line in text.splitlines() if RESULT in line]
        if not lines:
            raise RuntimeError(f"no result from {spec['path']}/{spec['model']}; see {log}")
        result = json.loads(lines[-1])
    result |= {"load_before": load_before, "load_after": _load()}
    result["process_s"] = round(time.perf_counter() - started, 2)
    return result


def measure_startup(overrides: list[str], out: Path, args, env: dict) -> dict:
    """``reglab-train`` in a subprocess: seconds from spawning it to its first step."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [sys.executable, "-c", STARTUP_PROBE, *overrides, f"hydra.run.dir={out / 'run'}"]
    load_before = _load()
    spawned = time.time()
    text = _spawn(cmd, out / "startup.log", args.console, env, args.timeout)
    marks: dict[str, float] = {}
    for line in text.splitlines():
        if MARK in line:
            key, value = line.split(MARK, 1)[1].split()[:2]
            marks.setdefault(key, float(value))
    if "first_step" not in marks:
        raise RuntimeError(f"no first training step seen; see {out / 'startup.log'}")
    return {
        "startup_s": marks["first_step"] - spawned,
        "interpreter_s": marks["python"] - spawned,
        "imports_s": marks["imported"] - marks["python"],
        "config_s": marks["build_data"] - marks["imported"],
        "data_to_first_step_s": marks["first_step"] - marks["build_data"],
        "peak_rss_mb": marks.get("peak_rss_mb"),
        "load_before": load_before,
        "load_after": _load(),
    }


def measure_sweep(exp: str, out: Path, args, env: dict) -> dict:
    """One quick-scale sweep (``reglab-train -m experiment=EXP scale=quick launcher=joblib``)."""
    if not (CONF / "experiment" / f"{exp}.yaml").exists():
        return {"skipped": f"conf/experiment/{exp}.yaml does not exist (yet)"}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [
        sys.executable, "-m", "reglab.train", "-m",
        f"experiment={exp}", "scale=quick", "launcher=joblib", *args.sweep_args,
    ]  # fmt: skip
    load_before = _load()
    started = time.perf_counter()
    env = env | {"REGLAB_LOG_DIR": str(out / "logs")}
    _spawn(cmd, out / "sweep.log", "file", env, args.timeout, check=False)
    wall = time.perf_counter() - started
    summaries = list((out / "logs").rglob("summary.json"))
    completed = sum(json.loads(p.read_text()).get("status") == "completed" for p in summaries)
    return {
        "sweep_s": wall,
        "runs": len(summaries),
        "completed": completed,
        "load_before": load_before,
        "load_after": _load(),
    }


def _ratio(a: dict | None, b: dict | None, key: str = "epoch_s") -> float | None:
    if not a or not b or not a.get(key) or not b.get(key):
        return None
    return a[key] / b[key]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def report(results: dict, figures: dict, context: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(130, Console().width))
    console.print(
        f"[bold]reglab bench[/] — {context['cpu']}, {context['threads']} torch threads, "
        f"device {context['device']}, torch {context['torch']}, lightning {context['lightning']}, "
        f"workers' console: {context['console']}, DataLoader num_workers={context['dl_workers']}"
    )
    table = Table(title="training epoch (median of measured epochs, warm-up left out)")
    for col in ("model", "path", "n", "batch", "steps", "epoch s", "ms/step", "÷ bare"):
        table.add_column(col, justify="right" if col not in ("model", "path") else "left")
    for col in ("CPU s", "val s", "end s", "RSS MB", "load"):
        table.add_column(col, justify="right")
    for (model, path), r in results.items():
        bare = results.get((model, "bare"))
        steps = r.get("steps")
        load = f"{r['load_before']:.1f}→{r['load_after']:.1f}"
        table.add_row(
            model,
            path,
            str(context["n_train"][model]),
            str(context["batch"][model]),
            str(steps),
            _fmt(r["epoch_s"]),
            _fmt(1000 * r["epoch_s"] / steps, 3) if steps else "—",
            _fmt(_ratio(r, bare), 3) if bare else "—",
            _fmt(r.get("cpu_s"), 3),
            _fmt(r.get("val_s"), 2),
            _fmt(r.get("epoch_end_s"), 3),
            _fmt(r["peak_rss_mb"], 0),
            load,
        )
    console.print(table)
    startup = context.get("startup")
    if startup:
        console.print(
            f"reglab-train start → first step: [bold]{startup['startup_s']:.2f} s[/] "
            f"(interpreter {startup['interpreter_s']:.2f} + imports {startup['imports_s']:.2f} + "
            f"config/precheck {startup['config_s']:.2f} + data, model, trainer → step "
            f"{startup['data_to_first_step_s']:.2f}); "
            f"peak RSS {_fmt(startup['peak_rss_mb'], 0)} MB; load {startup['load_before']:.2f}"
        )
    sweep = context.get("sweep")
    if sweep:
        if "skipped" in sweep:
            console.print(f"sweep {context['sweep_name']}: skipped — {sweep['skipped']}")
        else:
            console.print(
                f"sweep {context['sweep_name']} (scale=quick, launcher=joblib): "
                f"[bold]{sweep['sweep_s']:.1f} s[/] for {sweep['runs']} runs "
                f"({sweep['completed']} completed); load {sweep['load_before']:.2f}"
            )
    targets = Table(title="targets (figures to track, not pass/fail gates)")
    for col in ("figure", "wall time", "CPU time", "target", "met (wall)"):
        targets.add_column(col)
    for name, (limit, kind) in TARGETS.items():
        value = figures.get(name)
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        sign = "≤" if kind == "max" else "≥"
        targets.add_row(
            name,
            _fmt(value, 3),
            _fmt(figures.get(f"{name}_cpu"), 3),
            f"{sign} {limit:g}",
            "—" if met is None else ("yes" if met else "[red]no[/]"),
        )
    console.print(targets)
    console.print(
        "val s: validation inside the epoch (not in epoch s); end s: epoch-end work "
        "(checkpoint, loggers); RSS: peak resident memory of the path's process; load: 1-min "
        "load average before → after"
    )
    console.print(f"uptime at start: {context['uptime_start']}")
    console.print(f"uptime at end:   {context['uptime_end']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="measured epochs of (a) per path")
    p.add_argument("--dl-epochs", type=int, default=3, help="measured epochs, DataLoader path")
    p.add_argument("--big-epochs", type=int, default=2, help="measured epochs of (b)")
    p.add_argument("--warmup", type=int, default=1, help="epochs left out of each median")
    p.add_argument("--small-subset", type=int, help="train (a) on this many images (quick runs)")
    p.add_argument("--big-subset", type=int, help="train (b) on this many images (quick runs)")
    p.add_argument(
        "--threads", type=int, help="torch threads, the same for all paths (default: CPU count)"
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda: trainer=gpu)")
    p.add_argument("--precision", default=None, help="trainer.precision, e.g. bf16-mixed")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (compile=true)")
    p.add_argument("--dl-workers", type=int, default=0, help="DataLoader num_workers")
    p.add_argument("--console", choices=("tty", "file"), default="tty", help="workers' output")
    p.add_argument(
        "--only", nargs="+", default=list(PARTS), choices=PARTS, help="parts to measure",
    )  # fmt: skip
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="extra config override for every path, e.g. --set trainer.enable_progress_bar=false",
    )  # fmt: skip
    p.add_argument("--sweep", default="penalties", help="experiment to sweep; 'none' skips")
    p.add_argument("--sweep-args", nargs="*", default=[], help="extra overrides for the sweep")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the machinery only")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker process")
    p.add_argument("--json-out", type=Path, help="also write the JSON object to this file")
    p.add_argument("--keep", type=Path, help="keep logs and runs in this folder")
    p.add_argument(
        "--in-process", action="store_true",
        help="measure in this process, not one process per path (quick checks; RSS then "
        "is this process's running peak)",
    )  # fmt: skip
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs = args.dl_epochs = args.big_epochs = 1
        args.warmup = 0
        args.small_subset = args.small_subset or 2000
        args.big_subset = args.big_subset or 2000
        args.sweep = "none"
        args.threads = args.threads or 1  # a loaded machine stalls multi-threaded kernels
    args.threads = args.threads or os.cpu_count()
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return {}
    common = [f"threads={args.threads}", *args.overrides]
    if args.device.startswith("cuda"):
        common.append("trainer=gpu")
    if args.precision:
        common.append(f"trainer.precision={args.precision}")
    if args.compile:
        common.append("compile=true")
    small = [*SMALL, *common]
    big = [*BIG, *common]
    if args.small_subset:
        small.append(f"data.train_size={args.small_subset}")
    if args.big_subset:
        big.append(f"data.train_size={args.big_subset}")
    if args.smoke:  # tiny held-out split and a narrow (b): seconds, not minutes
        small += ["data.val_size=1000"]
        big += ["data.val_size=1000", "model.hidden=[256,256,256]"]
    n_train = {
        "small": args.small_subset or 60000 - 5000,
        "big": args.big_subset or 60000 - 10000,
    }
    shared = ROOT.parent / "shared" / "data"  # where CI and the developers keep MNIST
    if "REGLAB_DATA_DIR" not in os.environ and shared.is_dir():
        os.environ["REGLAB_DATA_DIR"] = str(shared)
    os.environ.setdefault("WANDB_MODE", "offline")
    env = os.environ | {
        "PYTHONUNBUFFERED": "1",
        "HYDRA_FULL_ERROR": "1",
    }
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="reglab-bench-")
    work = args.keep or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    context: dict[str, Any] = {
        "cpu": f"{platform.processor() or platform.machine()} × {os.cpu_count()} CPUs",
        "threads": args.threads,
        "device": args.device,
        "torch": version("torch"),
        "lightning": version("pytorch-lightning"),
        "console": args.console,
        "dl_workers": args.dl_workers,
        "n_train": n_train,
        "batch": {"small": 128, "big": 100},
        "uptime_start": _uptime(),
    }
    base = {
        "threads": args.threads,
        "device": args.device,
        "precision": args.precision or "32-true",
        "dl_workers": args.dl_workers,
    }
    plan = []
    if "small" in args.only:
        plan += [("small", path, args.epochs) for path in ("bare", "lightning", "reglab")]
    if "dataloader" in args.only:
        plan += [("small", "dataloader", args.dl_epochs)]
    if "big" in args.only:
        plan += [("big", "bare", args.big_epochs), ("big", "reglab", args.big_epochs)]
    results: dict[tuple[str, str], dict] = {}
    try:
        for model, path, epochs in plan:
            overrides = small if model == "small" else big
            total = args.warmup + epochs
            spec = base | {
                "path": path,
                "model": model,
                "epochs": epochs,
                "warmup": args.warmup,
                "overrides": [*overrides, f"trainer.max_epochs={total}"],
                "out": str(work / f"{model}-{path}"),
            }
            print(f"… {model} / {path}: {total} epochs (load {_load():.2f})", flush=True)
            results[(model, path)] = run_worker(spec, args, env)
        if "startup" in args.only:
            print(f"… reglab-train start → first step (load {_load():.2f})", flush=True)
            probe = [f"threads={args.threads}", *args.overrides]
            if args.device.startswith("cuda"):
                probe.append("trainer=gpu")
            context["startup"] = measure_startup(probe, work / "startup", args, env)
        if "sweep" in args.only and args.sweep != "none":
            print(f"… sweep {args.sweep} (load {_load():.2f})", flush=True)
            context["sweep_name"] = args.sweep
            context["sweep"] = measure_sweep(args.sweep, work / "sweep", args, env)
    finally:
        if tmp is not None:
            tmp.cleanup()
    context["uptime_end"] = _uptime()

    def get(model: str, path: str) -> dict | None:
        return results.get((model, path))

    pairs = {
        "small_reglab_over_bare": (get("small", "reglab"), get("small", "bare")),
        "small_lightning_over_bare": (get("small", "lightning"), get("small", "bare")),
        "small_reglab_over_lightning": (get("small", "reglab"), get("small", "lightning")),
        "big_reglab_over_bare": (get("big", "reglab"), get("big", "bare")),
        "dataloader_over_reglab": (get("small", "dataloader"), get("small", "reglab")),
    }
    figures: dict[str, Any] = {name: _ratio(*pair) for name, pair in pairs.items()}
    figures["startup_s"] = context.get("startup", {}).get("startup_s")
    # the same ratios in process CPU time: steadier than wall time on a shared machine
    figures |= {f"{name}_cpu": _ratio(*pair, key="cpu_s") for name, pair in pairs.items()}
    for (model, path), r in results.items():
        figures[f"{model}_{path}_epoch_s"] = r["epoch_s"]
        figures[f"{model}_{path}_cpu_s"] = r.get("cpu_s")
        figures[f"{model}_{path}_rss_mb"] = r["peak_rss_mb"]
        if "val_s" in r:
            figures[f"{model}_{path}_val_s"] = r["val_s"]
            figures[f"{model}_{path}_epoch_end_s"] = r["epoch_end_s"]
    if context.get("startup"):
        figures["startup_rss_mb"] = context["startup"]["peak_rss_mb"]
        figures["startup_imports_s"] = context["startup"]["imports_s"]
    sweep = context.get("sweep") or {}
    figures["sweep"] = context.get("sweep_name")
    figures["sweep_s"] = sweep.get("sweep_s")
    figures |= {
        "threads": args.threads,
        "device": args.device,
        "console": args.console,
        "dataloader_workers": args.dl_workers,
        "n_train_small": n_train["small"],
        "n_train_big": n_train["big"],
        "epochs": {"small": args.epochs, "dataloader": args.dl_epochs, "big": args.big_epochs},
        "smoke": args.smoke,
        "load_start": float(context["uptime_start"].rsplit(":", 1)[-1].split(",")[0]),
        "load_end": float(context["uptime_end"].rsplit(":", 1)[-1].split(",")[0]),
        "torch": context["torch"],
        "lightning": context["lightning"],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    report(results, figures, context)
    line = json.dumps(figures)
    if args.json_out:
        args.json_out.write_text(line + "\n")
    print(line, flush=True)
    return figures


if __name__ == "__main__":
    main()
