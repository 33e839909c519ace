"""``make bench ARGS="--only startup"``: how fast ``reglab-train`` answers and starts.

Wall and CPU seconds (user + system; each the best of ``repeat``; the CPU figure is what
the wall time would be on an idle machine) of ``reglab-train --help``, of refused inputs and of
``--cfg job``, none of which imports torch or Lightning, and of ``import pytorch_lightning``
(torch included) in a fresh interpreter, the floor a run that trains stands on; printed
beside start → first training step (:func:`measure_startup`). Nothing is asserted.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

MARK = "BENCH_MARK "  # the probe's lines: MARK, a name, a time

#: label → (arguments, the exit status they must give)
CLI_CASES = {
    "help": (["--help"], 0),
    "refused_value": (["dropout.p_hidden=1.5"], 2),
    "refused_key": (["+foo=1"], 2),
    "cfg_job": (["--cfg", "job"], 0),
}


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "reglab-train"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "reglab.train"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def best_of(
    cmd: list[str], env: dict, cwd: Path, repeat: int, code: int = 0
) -> tuple[float, float]:
    """The shortest wall and CPU seconds of ``repeat`` runs of ``cmd`` (exit status ``code``)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), children_cpu()
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, children_cpu() - cpu_start)
        if proc.returncode != code:
            raise RuntimeError(f"{' '.join(cmd[-2:])}: exit {proc.returncode}, not {code}: "
                               f"{proc.stderr[-1000:]}")  # fmt: skip
    return wall, cpu


def measure_cli(work: Path, env: dict, repeat: int) -> dict[str, float]:
    """Seconds of each :data:`CLI_CASES` command and of importing Lightning."""
    work.mkdir(parents=True, exist_ok=True)
    env = env | {"REGLAB_LOG_DIR": str(work / "logs")}
    times = {}
    for label, (argv, code) in CLI_CASES.items():
        wall, cpu = best_of([*_cli(), *argv], env, work, repeat, code)
        times |= {f"cli_{label}_s": wall, f"cli_{label}_cpu_s": cpu}
    lightning = [sys.executable, "-c", "import pytorch_lightning"]
    wall, cpu = best_of(lightning, env, work, max(1, min(repeat, 2)))
    return times | {"lightning_import_s": wall, "lightning_import_cpu_s": cpu}


def print_startup(startup: dict) -> None:
    """The startup figures side by side."""
    print("startup: wall s (CPU s), best of the repeats", flush=True)
    for label, (argv, _) in CLI_CASES.items():
        wall, cpu = startup[f"cli_{label}_s"], startup[f"cli_{label}_cpu_s"]
        print(f"  {'reglab-train ' + ' '.join(argv):<40} {wall:6.2f} s ({cpu:.2f})", flush=True)
    first, floor = startup["startup_s"], startup["lightning_import_s"]
    print(f"  {'start → first training step':<40} {first:6.2f} s ({startup['cpu_s']:.2f})   vs   "
          f"python -c 'import pytorch_lightning' {floor:.2f} s "
          f"({startup['lightning_import_cpu_s']:.2f}); difference {first - floor:+.2f} s",
          flush=True)  # fmt: skip


# The startup probe: exactly the ``reglab-train`` console script (``reglab.train:main``),
# with a mark printed when imports are done, when the data is loaded and at the first
# training step (the module's ``training_step``, called by Lightning's loop), where it exits.
STARTUP_PROBE = """
import os, sys, time
print("BENCH_MARK python", time.time(), flush=True)
import reglab.classifier, reglab.run
def first_step(self, dataloader_iter):
    print("BENCH_MARK first_step", time.time(), flush=True)
    status = open("/proc/self/status").read() if os.path.exists("/proc/self/status") else ""
    hwm = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    print("BENCH_MARK peak_rss_mb", int(hwm[0]) / 1024 if hwm else "nan", flush=True)
    os._exit(0)  # the start is measured; the rest of the run is not needed
reglab.classifier.StackedClassifier.training_step = first_step
load_data = reglab.run._load_data
def timed_load_data(*args, **kwargs):
    print("BENCH_MARK build_data", time.time(), flush=True)
    return load_data(*args, **kwargs)
reglab.run._load_data = timed_load_data
import reglab.train
print("BENCH_MARK imported", time.time(), flush=True)
sys.argv = ["reglab-train", *sys.argv[1:]]
reglab.train.main()
"""


def measure_startup(overrides: list[str], out: Path, env: dict, spawn) -> dict:
    """``reglab-train`` in a subprocess (:data:`STARTUP_PROBE`): seconds from spawning it to
    its first step. ``spawn(cmd, log, env)`` runs it to its end and returns its output."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [sys.executable, "-c", STARTUP_PROBE, *overrides, f"hydra.run.dir={out}/run"]
    spawned = time.time()
    text = spawn(cmd, out / "startup.log", env)
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
    }
