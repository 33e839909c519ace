#!/usr/bin/env python
"""reglab against a bare PyTorch loop, Lightning and the DataLoader path (``make bench``).

Parts (``--only``; each arm runs in its own process, see ``bench_arms.py``):

* ``members``: per-member step cost of stacked training. Stacks of K = 1, 4, 16, 64 jobs
  differing in seed through reglab's real path (``run_stack``: the LightningModule under
  Lightning's Trainer with reglab's callbacks, timed by one more callback), for (a) the small MLP
  784-64-128-64-10 with batchnorm, Adam, batch 128 and (b) the batchnorm experiment's
  784-100-100-100-10 sigmoid net with BN, SGD, batch 60; against the bare single-model
  loop and, at K = 1, the minimal Lightning loop (Lightning's floor);
* ``big``: Srivastava's 784-2048-2048-2048-10 dropout net, reglab (K = 1) against bare;
* ``dataloader``: (a) through torchvision's ``MNIST`` + transforms + ``DataLoader``;
* ``startup``: ``reglab-train`` from process start to its first training step, beside
  ``import pytorch_lightning``; ``--help``, refused inputs and ``--cfg job`` (``bench_startup.py``);
* ``fig9a``: the paper-scale Fig. 9a sweep as one stack (30 members of 784-2048³-10),
  its bytes per step against the floor they imply at the measured bandwidth, one
  evaluation and checkpoint of all members, and the projected time of 10⁶ updates;
* ``--against SRC``: another engine's ``src/`` (a ``git archive`` of an earlier commit)
  measured as the arm ``against`` in the same run, interleaved with the others;
* ``sweeps``: the quick sweeps through the real CLI, ``launcher=stacked`` against
  ``launcher=joblib``: wall time, agreement of the summaries, and where each sweep's time
  goes (start-up, data, training, evaluation, writing: ``summary.json``'s ``timing``)
  (``bench_sweeps.py``).

``--baseline DIR``: the folder an earlier run kept (``--keep DIR``, which also writes
``DIR/bench.json``; or ``--json-out DIR/bench.json``), e.g. of the engine before a change:
its figures beside these, and each launcher's sweep summaries against its.

With ``--device cuda`` every reglab row also gets its bytes per step, floor and ratio
(``bench_gpu.py``). The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_arms
import bench_gpu
import bench_report
import bench_startup
import bench_sweeps
from bench_process import spawn

ROOT = Path(__file__).resolve().parents[1]
RESULT = "BENCH_RESULT "
MODELS = {
    "small": ["model=mlp", "model.hidden=[64,128,64]", "model.batchnorm=true", "optimizer=adam",
              "data.batch_size=128", "data.val_size=5000"],
    "bn": ["model=mlp_3x100_sigmoid", "model.batchnorm=true", "optimizer=sgd",
           "data.batch_size=60", "data.binarize=true", "data.normalize=unit"],
    "big": ["model=mlp_2048x3", "dropout=standard", "optimizer=sgd", "data.batch_size=100"],
}  # fmt: skip
PARTS = ("members", "big", "dataloader", "startup", "fig9a", "sweeps")
DEFAULT_PARTS = {"cpu": ["members", "big", "dataloader", "startup"], "cuda": ["members", "fig9a"]}
NEVER = 10**9  # steps: no evaluation, no end inside the measurement


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", choices=PARTS, help="parts (default: see PARTS)")
    p.add_argument("--members", nargs="+", type=int, default=[1, 4, 16, 64], help="stack sizes K")
    p.add_argument("--steps", type=int, default=300, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=30, help="steps before the clock starts")
    p.add_argument(
        "--against",
        type=Path,
        metavar="SRC",
        help="another engine's src/ (e.g. a git archive of an earlier commit): "
        'its reglab arm ("against") measured in this run, beside this one',
    )
    p.add_argument("--arms", nargs="+", choices=tuple(bench_arms.ARMS),
                   help="only these arms (default: all)")  # fmt: skip
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every arm this many times, interleaved; keep each one's best",
    )
    p.add_argument("--fig9a-steps", type=int, default=200, help="timed steps of the fig9a stack")
    p.add_argument("--train-size", type=int, default=10000, help="training images (not fig9a)")
    p.add_argument("--threads", type=int, default=cores, help="torch threads of every arm")
    p.add_argument("--device", default="cpu", help="cpu or cuda (reglab: trainer=gpu)")
    p.add_argument("--dl-workers", type=int, default=0, help="DataLoader num_workers")
    p.add_argument("--console", choices=("tty", "file"), default="tty", help="workers' output")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every arm")  # fmt: skip
    p.add_argument("--sweeps", nargs="+", default=list(bench_sweeps.EXPERIMENTS))
    p.add_argument(
        "--stacked-args",
        nargs="*",
        default=[],
        help="the stacked sweeps' launcher settings (default: the launcher's own, a stack "
        "per core with one thread each; launcher.max_members=auto: ⌈jobs / n_procs⌉)",
    )
    p.add_argument(
        "--joblib-args",
        nargs="*",
        default=[f"launcher.n_jobs={cores}", "launcher.threads_per_job=1"],
        help="the joblib sweeps' launcher settings",
    )
    p.add_argument("--sweep-args", nargs="*", default=[], help="extra overrides, both launchers")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the machinery only")
    p.add_argument("--timeout", type=float, default=7200, help="seconds per process")
    p.add_argument("--json-out", type=Path, help="also write the JSON object to this file")
    p.add_argument("--keep", type=Path, help="keep logs, runs and bench.json in this folder")
    p.add_argument("--baseline", type=Path, help="an earlier run's --keep folder: compare")
    p.add_argument("--in-process", action="store_true", help="measure here, not in workers")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.device = "cuda" if args.device.startswith("cuda") else args.device
    args.only = args.only or DEFAULT_PARTS.get(args.device, DEFAULT_PARTS["cpu"])
    if args.smoke:
        args.members, args.steps, args.warmup, args.fig9a_steps = [1, 2], 4, 1, 4
        args.train_size, args.threads = 500, 1
        args.only = [p for p in args.only if p != "sweeps"]
    return args


def require_cuda() -> None:
    """``--device cuda`` without a GPU: one line, exit status 2."""
    import torch

    if not torch.cuda.is_available():
        print(
            f"bench: --device cuda: no CUDA device is available (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda or 'none'})",
            file=sys.stderr,
        )
        sys.exit(2)


def require_engine(src: Path) -> None:
    """``--against SRC`` must hold a reglab package with its ``conf/`` beside: one line,
    exit status 2, before any arm runs."""
    missing = [str(p) for p in (src / "reglab", src.parent / "conf") if not p.is_dir()]
    if missing:
        print(
            f"bench: --against {src}: no {' or '.join(missing)} (make one with: mkdir D && "
            "git archive REV src conf | tar -x -C D; then --against D/src)",
            file=sys.stderr,
        )
        sys.exit(2)


# --------------------------------------------------------------------------------------
# Processes: each arm in a fresh worker (one BENCH_RESULT line), the CLI for the rest.
# --------------------------------------------------------------------------------------


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_worker(spec: dict, args, env: dict) -> list[dict]:
    out = Path(spec["out"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    load = _load()
    print(f"… {spec['model']} / {spec['arm']} K={spec.get('members', [1])} (load {load})",
          flush=True)  # fmt: skip
    if spec.get("src"):  # the --against engine: its reglab package first on the path
        env = env | {"PYTHONPATH": os.pathsep.join([spec["src"], env.get("PYTHONPATH", "")])}
    if args.in_process and not spec.get("src"):
        result = bench_arms.measure(spec)
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        text = spawn(cmd, out / "worker.log", args.console, env, args.timeout)
        lines = [line.split(RESULT, 1)[1] for line in text.splitlines() if RESULT in line]
        if not lines:
            raise RuntimeError(f"no result from {spec['arm']}/{spec['model']}; see {out}")
        result = json.loads(lines[-1])
    return [
        {"model": spec["model"], "arm": spec["arm"], "peak_rss_mb": result["peak_rss_mb"],
         "load_before": load, **row}
        for row in result["rows"]
    ]  # fmt: skip


def best_rows(rows: list[dict]) -> list[dict]:
    """One row per (model, arm, K): the round with the best ``step_s``, in first-seen order."""
    best: dict[tuple, dict] = {}
    for r in rows:
        key = (r["model"], r["arm"], r["members"])
        if key not in best or r["step_s"] < best[key]["step_s"]:
            best[key] = r
    return list(best.values())


# --------------------------------------------------------------------------------------
# The plan, the figures.
# --------------------------------------------------------------------------------------


def plan(args) -> list[dict]:
    """The worker specs of the parts asked for."""
    common = [
        f"threads={args.threads}", "logger=[]", "trainer.enable_progress_bar=false",
        "checkpoint.enabled=false", "trainer.max_epochs=-1", f"trainer.max_steps={NEVER}",
        "trainer.check_val_every_n_epoch=null", f"trainer.val_check_interval={NEVER}",
        *(["trainer=gpu"] if args.device == "cuda" else []),
    ]  # fmt: skip
    sized = [*common, f"data.train_size={args.train_size}", *args.overrides]
    if args.smoke:
        sized += ["data.val_size=1000"]
    base = {"steps": args.steps, "warmup": args.warmup, "device": args.device,
            "threads": args.threads, "dl_workers": args.dl_workers}  # fmt: skip

    def spec(model: str, arm: str, members=(1,), **extra) -> dict:
        overrides = [*MODELS.get(model, []), *sized]
        if args.smoke and model == "big":
            overrides.append("model.hidden=[128,128,128]")
        return base | {"model": model, "arm": arm, "members": list(members),
                       "overrides": overrides} | extra  # fmt: skip

    specs = []
    if "members" in args.only:
        for model in ("small", "bn"):
            specs += [spec(model, "bare"), spec(model, "lightning")]
            specs.append(spec(model, "reglab", args.members))
            specs.append(spec(model, "direct"))
            if args.against:
                specs.append(spec(model, "against", args.members, src=str(args.against)))
    if "big" in args.only:
        specs += [spec("big", "bare"), spec("big", "reglab")]
        if args.against:
            specs.append(spec("big", "against", src=str(args.against)))
    if "dataloader" in args.only:
        specs.append(spec("small", "dataloader"))
    if "fig9a" in args.only:
        overrides, jobs = bench_gpu.fig9a_jobs()
        overrides += [*common, *args.overrides]
        if args.smoke:
            jobs = jobs[:: len(jobs) // 3][:3]
            overrides += ["model.hidden=[32,32,32]", "data.train_size=500", "data.val_size=1000"]
        specs.append(base | {"model": "fig9a", "arm": "reglab", "members": [len(jobs)],
                             "overrides": overrides, "jobs": jobs, "extras": True,
                             "steps": args.fig9a_steps})  # fmt: skip
    return specs


def figures_of(rows: list[dict], context: dict) -> dict[str, Any]:
    find = {(r["model"], r["arm"], r["members"]): r for r in rows}
    figures: dict[str, Any] = {}

    def ratio(a, b, key="step_s", per=1):
        return a[key] / per / b[key] if a and b and b.get(key) else None

    for r in rows:
        k, name = r["members"], f"{r['model']}_{r['arm']}_K{r['members']}"
        figures[f"{name}_step_ms"] = 1000 * r["step_s"]
        figures[f"{name}_rss_mb"] = r["peak_rss_mb"]
        bare = find.get((r["model"], "bare", 1))
        if r["arm"] in ("reglab", "against") and r["model"] in ("small", "bn"):
            prefix = "members" if r["arm"] == "reglab" else "against"
            figures[f"{prefix}_{r['model']}_K{k}_over_bare"] = ratio(r, bare, per=k)
            figures[f"{prefix}_{r['model']}_K{k}_over_bare_cpu"] = ratio(r, bare, "cpu_s", k)
        if "bytes" in r:
            figures[f"{name}_bytes"] = r["bytes"]["total"]
        if "over_floor" in r:
            figures[f"{name}_over_floor"] = r["over_floor"]
    for model in ("small", "bn", "big"):
        reglab, bare = find.get((model, "reglab", 1)), find.get((model, "bare", 1))
        lightning = find.get((model, "lightning", 1))
        if reglab and bare:
            figures[f"{model}_reglab_over_bare"] = ratio(reglab, bare)
        if reglab and lightning:
            figures[f"{model}_reglab_over_lightning"] = ratio(reglab, lightning)
            figures[f"{model}_reglab_over_lightning_cpu"] = ratio(reglab, lightning, "cpu_s")
        for arm in ("direct", "against"):
            found = find.get((model, arm, 1))
            if found and lightning:
                figures[f"{model}_{arm}_over_lightning"] = ratio(found, lightning)
            if found and bare:
                figures[f"{model}_{arm}_over_bare"] = ratio(found, bare)
        if lightning and bare:
            figures[f"{model}_lightning_over_bare"] = ratio(lightning, bare)
    loader, reglab = find.get(("small", "dataloader", 1)), find.get(("small", "reglab", 1))
    if loader and reglab:
        figures["dataloader_over_reglab"] = ratio(loader, reglab)
    if context.get("startup"):
        figures |= {f"startup_{k}".replace("startup_startup", "startup"): v
                    for k, v in context["startup"].items()}  # fmt: skip
    fig9a = context.get("fig9a")
    if fig9a:
        figures |= {"fig9a_members": fig9a["members"], "fig9a_step_ms": 1000 * fig9a["step_s"],
                    "fig9a_over_floor": fig9a.get("over_floor"),
                    "fig9a_projected_h": fig9a["projection"]["total_h"],
                    "fig9a_eval_s": fig9a["eval_s"], "fig9a_ckpt_s": fig9a["ckpt_s"],
                    "bandwidth_gbs": (fig9a.get("bandwidth") or 0) / 1e9 or None}  # fmt: skip
    sweeps = context.get("sweeps")
    if sweeps:
        figures |= {f"sweeps_{k}": v for k, v in sweeps["all"].items()}  # phases: stacked
        keys = ("joblib_s", "stacked_s", "speedup", "max_abs_diff", "agree", "jobs", "worst_job")
        for exp, r in sweeps["experiments"].items():
            figures |= {f"sweep_{exp}_{k}": r[k] for k in keys}
    return figures


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        print(RESULT + json.dumps(bench_arms.measure(json.loads(args.worker))), flush=True)
        return {}
    if args.device == "cuda":
        require_cuda()
    if args.against is not None:
        require_engine(args.against)
    shared = ROOT.parent / "shared" / "data"  # where CI and the developers keep MNIST
    if "REGLAB_DATA_DIR" not in os.environ and shared.is_dir():
        os.environ["REGLAB_DATA_DIR"] = str(shared)
    os.environ.setdefault("WANDB_MODE", "offline")
    env = os.environ | {"PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="reglab-bench-")
    work = args.keep or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    context: dict[str, Any] = {
        "cpu": f"{platform.processor() or platform.machine()} × {os.cpu_count()} CPUs",
        "torch": version("torch"),
        "uptime_start": _uptime(),
    }
    if args.baseline is not None:
        found = args.baseline / "bench.json"
        context["baseline"] = json.loads(found.read_text()) if found.exists() else {}
    rows: list[dict] = []
    try:
        specs = [s for s in plan(args) if not args.arms or s["arm"] in args.arms]
        for i, spec in enumerate(specs * args.rounds):  # rounds interleave the arms
            spec = spec | {"out": str(work / f"{i:02d}-{spec['model']}-{spec['arm']}")}
            rows = best_rows(rows + run_worker(spec, args, env))
            if args.json_out:  # as it goes: a run cut short keeps what it measured
                args.json_out.parent.mkdir(parents=True, exist_ok=True)
                args.json_out.write_text(json.dumps({"partial": True, "rows": rows}) + "\n")
        if "startup" in args.only:
            print(f"… reglab-train start → first step (load {_load()})", flush=True)
            probe = [f"threads={args.threads}", *args.overrides]
            cpu = bench_startup.children_cpu()
            run = lambda cmd, log, env: spawn(cmd, log, args.console, env, args.timeout)  # noqa: E731
            context["startup"] = bench_startup.measure_startup(probe, work / "startup", env, run)
            context["startup"]["cpu_s"] = bench_startup.children_cpu() - cpu
            repeat = 1 if args.smoke else 3
            context["startup"] |= bench_startup.measure_cli(work / "cli", env, repeat)
            bench_startup.print_startup(context["startup"])
        if "sweeps" in args.only:
            run = lambda cmd, log, env: spawn(cmd, log, "file", env, args.timeout, check=False)  # noqa: E731
            context["sweeps"] = bench_sweeps.measure_sweeps(work / "sweeps", args, env, run)
    finally:
        if tmp is not None:
            tmp.cleanup()
    context["uptime_end"] = _uptime()
    fig9a = next((r for r in rows if r["model"] == "fig9a"), None)
    if fig9a:
        schedule = bench_gpu.fig9a_schedule()
        projection = bench_gpu.project(fig9a["step_s"], fig9a["eval_s"], fig9a["ckpt_s"],
                                       **schedule)  # fmt: skip
        context["fig9a"] = fig9a | schedule | {"projection": projection}
    figures = figures_of(rows, context)
    figures |= {
        "threads": args.threads, "device": args.device, "steps": args.steps,
        "warmup": args.warmup, "train_size": args.train_size, "smoke": args.smoke,
        "load_start": float(context["uptime_start"].rsplit(":", 1)[-1].split(",")[0]),
        "load_end": float(context["uptime_end"].rsplit(":", 1)[-1].split(",")[0]),
        "torch": context["torch"], "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }  # fmt: skip
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    bench_report.report(rows, figures, context, args)
    line = json.dumps(figures)
    for path in filter(None, [args.json_out, args.keep and args.keep / "bench.json"]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n")
    print(line, flush=True)
    return figures


if __name__ == "__main__":
    main()
