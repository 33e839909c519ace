"""Quick sweeps through the real CLI, ``launcher=stacked`` against ``launcher=joblib``.

Each experiment runs twice into its own temporary log folder (``REGLAB_LOG_DIR``), joblib
first; the wall time is the CLI process's, start to exit. The two sweeps' summaries are
matched by job folder (launcher keys are not in folder names) and compared by test error:
a job agrees when |stacked − joblib| ≤ max(0.1 points, s.d./4), s.d. being the
seed-to-seed standard deviation of its setting (the other jobs with the same folder name
but for the seed) in the joblib sweep.

Where each sweep's time goes: every ``summary.json`` holds its stack's seconds per phase
(``timing``: start-up, data, training, evaluation, writing; :mod:`reglab.timing`); a
stack's latest are summed over the sweep's stacks, beside the wall time × the worker
processes (the rest: ``other``). With ``--baseline DIR`` (a folder an earlier bench run
kept), each launcher's summaries are also compared with that run's by the same rule.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

EXPERIMENTS = ("batchnorm", "randomization", "label_corruption", "penalties")
ARMS = ("joblib", "stacked")
TOLERANCE = 0.1  # test-error points
PHASES = ("startup", "data", "train", "eval", "write")  # reglab.timing.PHASES
_ITEM = re.compile(r",(?=[\w.]+=)")  # a folder name's separators (not commas inside values)


def command(exp: str, arm: str, args, jobs: int | None = None) -> list[str]:
    """The CLI's sweep; ``launcher.max_members=auto`` in the stacked arm's arguments becomes
    ⌈jobs / launcher.n_procs⌉, so that every process gets a stack (``jobs``: the sweep's size)."""
    launch = list(args.stacked_args if arm == "stacked" else args.joblib_args)
    if "launcher.max_members=auto" in launch:
        procs = [int(a.split("=", 1)[1]) for a in launch if a.startswith("launcher.n_procs=")]
        members = -(-jobs // (procs or [1])[-1]) if jobs else 64
        launch[launch.index("launcher.max_members=auto")] = f"launcher.max_members={members}"
    return [
        sys.executable, "-m", "reglab.train", "-m", f"experiment={exp}", "scale=quick",
        f"launcher={arm}", *launch, *args.sweep_args,
    ]  # fmt: skip


def summaries(log_dir: Path) -> dict[str, dict]:
    """Job folder name (relative to the sweep folder) → summary.json."""
    found = {}
    for path in log_dir.rglob("summary.json"):
        parts = path.parent.relative_to(log_dir).parts  # sweeps/<name>/<scale>/<job>
        found["/".join(parts[3:]) or path.parent.name] = json.loads(path.read_text())
    return found


def setting(job: str) -> str:
    """A job's folder name without its seed: the setting whose seeds it is one of."""
    return ",".join(i for i in _ITEM.split(job) if not i.startswith("seed="))


def agreement(joblib: dict[str, dict], stacked: dict[str, dict]) -> dict:
    """Per job |Δ test error|; the max, how many agree (see the module docstring)."""

    def error(s: dict | None) -> float | None:
        return ((s or {}).get("metrics") or {}).get("test_error")

    by_setting: dict[str, list[float]] = {}
    for job, s in joblib.items():
        if error(s) is not None:
            by_setting.setdefault(setting(job), []).append(error(s))
    diffs, agree, missing = {}, 0, []
    for job in sorted(set(joblib) | set(stacked)):
        a, b = error(joblib.get(job)), error(stacked.get(job))
        if a is None or b is None:
            missing.append(job)
            continue
        seeds = by_setting.get(setting(job), [])
        sd = statistics.stdev(seeds) if len(seeds) > 1 else 0.0
        diffs[job] = abs(a - b)
        agree += diffs[job] <= max(TOLERANCE, sd / 4) + 1e-9
    worst = max(diffs, key=diffs.get) if diffs else None
    return {
        "jobs": len(diffs),
        "agree": agree,
        "max_abs_diff": max(diffs.values()) if diffs else None,
        "mean_abs_diff": statistics.fmean(diffs.values()) if diffs else None,
        "worst_job": worst,
        "missing": missing,
    }


def _procs(arm: str, args) -> int:
    """Worker processes the launcher runs at once (its setting; default: the cores)."""
    launch = args.stacked_args if arm == "stacked" else args.joblib_args
    key = "launcher.n_procs=" if arm == "stacked" else "launcher.n_jobs="
    found = [a[len(key) :] for a in launch if a.startswith(key)]
    return int(found[-1]) if found and found[-1].isdigit() else os.cpu_count() or 1


def phases(found: dict[str, dict], wall_s: float, procs: int) -> dict:
    """Seconds per phase summed over the stacks of a sweep's summaries (a stack's latest:
    its last summary's), the stacks, the process time (wall × ``procs``, at most one per
    stack) and ``other``: the process time no stack accounted for."""
    stacks: dict[str, dict[str, float]] = {}
    for s in found.values():
        timing, stack = s.get("timing"), (s.get("stack") or {}).get("id")
        if timing and stack:
            seen = stacks.setdefault(stack, {})
            for key, value in timing.items():
                seen[key] = max(seen.get(key, 0.0), value)
    out: dict = {f"{p}_s": sum(st.get(f"{p}_s", 0.0) for st in stacks.values()) for p in PHASES}
    procs = max(1, min(procs, len(stacks)))
    out |= {"stacks": len(stacks), "procs": procs, "process_s": wall_s * procs}
    out["other_s"] = max(0.0, out["process_s"] - sum(out[f"{p}_s"] for p in PHASES))
    return out


def measure_sweeps(work: Path, args, env: dict, spawn) -> dict:
    """Both launchers on every experiment of ``args.sweeps``; per experiment and together.
    ``spawn(cmd, log, env)`` runs one CLI process to its end."""
    results: dict = {"experiments": {}}
    for exp in args.sweeps:
        row: dict = {}
        folders = {}
        for arm in ARMS:
            out = work / exp / arm
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            cmd = command(exp, arm, args, row.get("joblib_jobs"))
            print(f"… sweep {exp} / {arm}: {' '.join(cmd[2:])}", flush=True)
            started = time.perf_counter()
            spawn(cmd, out / "sweep.log", env | {"REGLAB_LOG_DIR": str(out)})
            row[f"{arm}_s"] = time.perf_counter() - started
            folders[arm] = summaries(out)
            done = [s for s in folders[arm].values() if s.get("status") == "completed"]
            row[f"{arm}_jobs"], row[f"{arm}_completed"] = len(folders[arm]), len(done)
            row[f"{arm}_phases"] = phases(folders[arm], row[f"{arm}_s"], _procs(arm, args))
            base = getattr(args, "baseline", None)
            if base is not None and (base / "sweeps" / exp / arm).is_dir():
                row[f"{arm}_vs_baseline"] = agreement(
                    summaries(base / "sweeps" / exp / arm), folders[arm]
                )
        row["speedup"] = row["joblib_s"] / row["stacked_s"]
        row |= agreement(folders["joblib"], folders["stacked"])
        results["experiments"][exp] = row
    rows = results["experiments"].values()
    joblib_s, stacked_s = sum(r["joblib_s"] for r in rows), sum(r["stacked_s"] for r in rows)
    diffs = [r["max_abs_diff"] for r in rows if r["max_abs_diff"] is not None]
    results["all"] = {
        **{f"stacked_{p}_s": sum(r["stacked_phases"][f"{p}_s"] for r in rows) for p in PHASES},
        "stacked_other_s": sum(r["stacked_phases"]["other_s"] for r in rows),
        "joblib_s": joblib_s,
        "stacked_s": stacked_s,
        "speedup": joblib_s / stacked_s if stacked_s else None,
        "jobs": sum(r["jobs"] for r in rows),
        "agree": sum(r["agree"] for r in rows),
        "max_abs_diff": max(diffs) if diffs else None,
    }
    return results
