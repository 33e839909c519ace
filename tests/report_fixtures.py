"""Synthetic sweep folders for the report tests: the files a real sweep writes, no training.

``make_sweep`` writes Hydra's ``multirun.yaml`` and one job folder per job, each with a
``summary.json`` shaped like ``reglab.run.run`` writes it (or without one, for a job that
was killed). ``EXPERIMENT_JOBS`` builds plausible jobs for every experiment of the report.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from reglab import jobs
from reglab import published as pub
from reglab.rerun import HOW_KEYS

Job = dict[str, Any]


# --------------------------------------------------------------------------- writers


def job_dirname(overrides: list[str]) -> str:
    """Hydra's override_dirname: sorted ``k=v`` joined by ',', result-neutral keys
    (:data:`reglab.rerun.HOW_KEYS`, conf/config.yaml's exclude_keys) left out."""
    return jobs.job_dirname(overrides, HOW_KEYS)


def make_sweep(
    root: Path,
    name: str,
    sweep_args: list[str],
    jobs: list[Job],
    scale: str | None = "quick",
    grid: dict[str, str] | None = None,
) -> Path:
    """Write ``root/multirun.yaml`` (basic sweeper, ``sweep_args`` as the command line,
    ``grid`` as the experiment file's ``hydra.sweeper.params``) and each job. A job is a
    dict with ``overrides`` and optionally ``status`` (``None`` writes no summary),
    ``metrics``, ``history``, ``config``, ``choices``, ``seed``."""
    root.mkdir(parents=True, exist_ok=True)
    task = [f"name={name}", *([f"scale={scale}"] if scale else []), *sweep_args]
    multirun = {
        "hydra": {
            "sweeper": {
                "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                "max_batch_size": None,
                "params": grid,
            },
            "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task},
            "runtime": {"choices": {"scale": scale} if scale else {}},
        },
        "name": name,
    }
    (root / "multirun.yaml").write_text(yaml.safe_dump(multirun), encoding="utf-8")
    for job in jobs:
        overrides = [f"name={name}", *([f"scale={scale}"] if scale else []), *job["overrides"]]
        folder = root / job_dirname(overrides)
        (folder / ".hydra").mkdir(parents=True, exist_ok=True)
        (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        status = job.get("status", "completed")
        if status is None:
            continue
        summary = {
            "status": status,
            "name": name,
            "overrides": overrides,
            "choices": {"scale": scale, **job.get("choices", {})}
            if scale
            else job.get("choices", {}),
            "seed": job.get("seed", 0),
            "config": {"name": name, "seed": job.get("seed", 0), **job.get("config", {})},
            "metrics": job.get("metrics", {}),
            "history": job.get("history", []),
            "wall_time_s": job.get("wall_time_s", 12.5),
            "git_commit": "abc1234",
            "versions": {"python": "3.11"},
        }
        if status != "completed":
            summary["error"] = job.get("error", "RuntimeError: boom")
        (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return root


# --------------------------------------------------------------------------- job builders


def _mnist(train_size: int | None = None) -> dict[str, Any]:
    return {
        "name": "mnist",
        "val_size": 10000,
        "train_size": train_size,
        "normalize": "standardize",
        "crop": None,
        "binarize": False,
    }


def _dropout(p: float) -> dict[str, Any]:
    return {"p_hidden": p, "p_input": 1.0}


def _history(steps: list[int], **curves: Callable[[float], float]) -> list[dict[str, float]]:
    return [
        {"step": s, "epoch": i, **{k: f(s) for k, f in curves.items()}} for i, s in enumerate(steps)
    ]


def dropout_rate_jobs(
    experiment: str, seeds: tuple[int, ...] = (0, 1)
) -> tuple[list[str], list[Job]]:
    test = pub.series(experiment, "test_error")
    train = pub.series(experiment, "train_error")
    jobs = []
    for (p, te, tr), seed in itertools.product(
        zip(test["x"], test["y"], train["y"], strict=True), seeds
    ):
        jobs.append(
            {
                "overrides": [f"dropout.p_hidden={p}", f"seed={seed}"],
                "seed": seed,
                "config": {"data": _mnist(), "dropout": _dropout(p), "model": {"hidden": [64]}},
                "choices": {"dropout": "hidden"},
                "metrics": {"test_error": te + 0.3 + 0.1 * seed, "train_error": tr + 0.05 * seed},
            }
        )
    ps = ",".join(str(p) for p in test["x"])
    return [f"dropout.p_hidden={ps}", f"seed={','.join(map(str, seeds))}"], jobs


def data_size_jobs() -> tuple[list[str], list[Job]]:
    sizes = [100, 500, 1000, 5000, 10000, 50000]
    jobs = []
    for size, p, seed in itertools.product(sizes, (0.5, 1.0), (0, 1)):
        base = 40.0 / np.sqrt(size / 100)
        err = base * (1.1 if p == 1.0 and size > 500 else 1.0) + 0.2 * seed
        jobs.append(
            {
                "overrides": [f"data.train_size={size}", f"dropout.p_hidden={p}", f"seed={seed}"],
                "seed": seed,
                "config": {"data": _mnist(size), "dropout": _dropout(p)},
                "metrics": {"test_error": err, "train_error": 0.0},
            }
        )
    return [
        "data.train_size=100,500,1000,5000,10000,50000",
        "dropout.p_hidden=0.5,1.0",
        "seed=0,1",
    ], jobs


def architectures_jobs() -> tuple[list[str], list[Job]]:
    models = {
        "mlp_1024x3": [1024] * 3,
        "mlp_2048x3": [2048] * 3,
        "mlp_1024x2_2048": [1024, 1024, 2048],
    }
    jobs = []
    for (model, hidden), p, seed in itertools.product(models.items(), (0.5, 1.0), (0, 1)):
        jobs.append(
            {
                "overrides": [f"model={model}", f"dropout.p_hidden={p}", f"seed={seed}"],
                "seed": seed,
                "config": {
                    "data": _mnist(),
                    "dropout": _dropout(p),
                    "model": {"hidden": hidden},
                    "regularizer": {"_target_": "reglab.regularizers.MaxNorm", "c": 2.0},
                },
                "choices": {"model": model, "regularizer": "max_norm"},
                "metrics": {"test_error": (1.1 if p < 1 else 1.7) + 0.05 * seed},
            }
        )
    return [f"model={','.join(models)}", "dropout.p_hidden=0.5,1.0", "seed=0,1"], jobs


def randomization_jobs() -> tuple[list[str], list[Job]]:
    speed = {
        "none": 1.0,
        "shuffled_pixels": 0.7,
        "gaussian": 0.55,
        "random_pixels": 0.5,
        "random_labels": 0.3,
    }
    steps = list(range(0, 20001, 500))
    jobs = []
    for (kind, v), seed in itertools.product(speed.items(), (0, 1)):
        fit = int(4500 / v) + 200 * seed
        jobs.append(
            {
                "overrides": [f"corruption={kind}", f"seed={seed}"],
                "seed": seed,
                "choices": {"corruption": kind},
                "config": {"data": _mnist(), "corruption": {}},
                "metrics": {
                    "test_error": 90.0 if kind != "none" else 2.0,
                    "train_loss": 0.001,
                    "steps_to_fit": fit,
                },
                "history": _history(
                    steps, **{"train/loss": lambda s, f=fit: 2.3 * max(0.0, 1 - s / f) ** 2}
                ),
            }
        )
    return [f"corruption={','.join(speed)}", "seed=0,1"], jobs


def label_corruption_jobs() -> tuple[list[str], list[Job]]:
    jobs = []
    for q, p, seed in itertools.product((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), (1.0, 0.5), (0, 1)):
        jobs.append(
            {
                "overrides": [f"corruption.q={q}", f"dropout.p_hidden={p}", f"seed={seed}"],
                "seed": seed,
                "choices": {"corruption": "partial_labels", "model": "mlp_1x512"},
                "config": {
                    "corruption": {"_target_": "reglab.data.PartialLabels", "q": q},
                    "dropout": _dropout(p),
                    "model": {"hidden": [512]},
                },
                "metrics": {
                    "test_error": 2 + 85 * q,
                    "steps_to_fit": int(1000 * (1 + q * (2 if p < 1 else 1)) + 50 * seed),
                },
            }
        )
    return ["corruption.q=0.0,0.2,0.4,0.6,0.8,1.0", "dropout.p_hidden=1.0,0.5", "seed=0,1"], jobs


def batchnorm_jobs() -> tuple[list[str], list[Job]]:
    steps = list(range(0, 50001, 1000))
    jobs = []
    for bn, seed in itertools.product((False, True), (0, 1)):
        rate = 8000 if bn else 20000
        drift = 0.0 if bn else 1.0
        jobs.append(
            {
                "overrides": [f"model.batchnorm={bn}", f"seed={seed}"],
                "seed": seed,
                "config": {"model": {"hidden": [100, 100, 100], "batchnorm": bn}},
                "metrics": {"test_error": 2.5 if bn else 4.0},
                "history": _history(
                    steps,
                    **{
                        "test/error": lambda s, r=rate: 2.5 + 80 * np.exp(-s / r),
                        "probe/last_preact_p15": lambda s, d=drift: -1 - d * s / 25000,
                        "probe/last_preact_p50": lambda s, d=drift: 0 - 0.5 * d * s / 25000,
                        "probe/last_preact_p85": lambda s, d=drift: 1 + 0.2 * d * s / 25000,
                    },
                ),
            }
        )
    return ["model.batchnorm=false,true", "seed=0,1"], jobs


def penalties_jobs() -> tuple[list[str], list[Job]]:
    lams = [1e-5, 1e-4, 1e-3]
    targets = {"l1": "L1", "l1_proximal": "L1Proximal", "l2": "L2"}
    jobs = []
    for (reg, cls), lam, seed in itertools.product(targets.items(), lams, (0, 1)):
        zero = {"l1": 0.001, "l1_proximal": min(0.95, 300 * lam), "l2": 0.0}[reg]
        jobs.append(
            {
                "overrides": [f"regularizer={reg}", f"regularizer.lam={lam}", f"seed={seed}"],
                "seed": seed,
                "choices": {"regularizer": reg},
                "config": {"regularizer": {"_target_": f"reglab.regularizers.{cls}", "lam": lam}},
                "metrics": {"test_error": 2 + 1000 * lam, "zero_weight_fraction": zero},
            }
        )
    return ["regularizer=l1,l1_proximal,l2", "regularizer.lam=1e-05,0.0001,0.001", "seed=0,1"], jobs


def regularizer_comparison_jobs() -> tuple[list[str], list[Job]]:
    """Table 9's arms × strengths × 2 seeds; the best validation strength is not the best
    test one for max-norm (the report must choose on validation)."""
    arms = {
        "l2": ("L2", "lam", {"weak": 5e-5, "medium": 5e-4, "strong": 5e-3}),
        "l2_l1": ("ElasticNet", "lam_l1", {"weak": 1e-5, "medium": 1e-4, "strong": 1e-3}),
        "max_norm": ("MaxNorm", "c", {"weak": 4.0, "medium": 3.0, "strong": 2.0}),
        "dropout_l2": ("L2", "lam", {"weak": 5e-5, "medium": 5e-4, "strong": 5e-3}),
        "dropout_max_norm": ("MaxNorm", "c", {"weak": 4.0, "medium": 3.0, "strong": 2.0}),
    }
    base = {"l2": 1.6, "l2_l1": 1.7, "max_norm": 1.4, "dropout_l2": 1.3, "dropout_max_norm": 1.1}
    shift = {"weak": (0.3, -0.1), "medium": (0.0, 0.1), "strong": (0.2, 0.0)}  # (val, test)
    jobs = []
    for (arm, (cls, key, grid)), strength, seed in itertools.product(
        arms.items(), ("weak", "medium", "strong"), (0, 1)
    ):
        val, test = (base[arm] + d + 0.05 * seed for d in shift[strength])
        p = 0.5 if arm.startswith("dropout") else 1.0
        jobs.append(
            {
                "overrides": [
                    f"comparison_arm={arm}",
                    f"comparison.strength={strength}",
                    f"seed={seed}",
                ],
                "seed": seed,
                "choices": {"comparison_arm": arm},
                "config": {
                    "comparison": {"strength": strength},
                    "regularizer": {"_target_": f"reglab.regularizers.{cls}", key: grid[strength]},
                    "dropout": _dropout(p),
                    "data": _mnist() | {"normalize": "unit"},
                },
                "metrics": {"val_error": val, "test_error": test},
            }
        )
    grid = ["comparison_arm=l2,l2_l1,max_norm,dropout_l2,dropout_max_norm"]
    return [*grid, "comparison.strength=weak,medium,strong", "seed=0,1"], jobs


def user_sweep_jobs() -> tuple[list[str], list[Job]]:
    """A user's sweep with no report module (the generic figure): lr (numeric) and
    optimizer (a choice), 2 seeds."""
    jobs = []
    for lr, opt, seed in itertools.product((0.01, 0.1, 1.0), ("sgd", "adam"), (0, 1)):
        err = 2.0 + lr + (1.0 if opt == "adam" else 0.0) + 0.2 * seed
        jobs.append(
            {
                "overrides": [f"optimizer={opt}", f"optimizer.lr={lr}", f"seed={seed}"],
                "seed": seed,
                "choices": {"optimizer": opt},
                "config": {"optimizer": {"lr": lr}},
                "metrics": {"test_error": err, "train_error": 0.0},
            }
        )
    return ["optimizer=sgd,adam", "optimizer.lr=0.01,0.1,1.0", "seed=0,1"], jobs


EXPERIMENT_JOBS: dict[str, Callable[[], tuple[list[str], list[Job]]]] = {
    "dropout_rate_fixed_n": lambda: dropout_rate_jobs("dropout_rate_fixed_n"),
    "dropout_rate_fixed_pn": lambda: dropout_rate_jobs("dropout_rate_fixed_pn"),
    "data_size": data_size_jobs,
    "architectures": architectures_jobs,
    "randomization": randomization_jobs,
    "label_corruption": label_corruption_jobs,
    "batchnorm": batchnorm_jobs,
    "penalties": penalties_jobs,
    "regularizer_comparison": regularizer_comparison_jobs,
}


def make_all(log_dir: Path, experiments: list[str] | None = None) -> dict[str, Path]:
    """One synthetic sweep per experiment under ``log_dir/sweeps/<name>/quick``."""
    out = {}
    for name in experiments or list(EXPERIMENT_JOBS):
        args, jobs = EXPERIMENT_JOBS[name]()
        out[name] = make_sweep(log_dir / "sweeps" / name / "quick", name, args, jobs)
    return out


def runs_frame(jobs: list[Job], experiment: str):
    """The completed runs' frame ``reglab.report.sweeps`` reads, straight from jobs."""
    import pandas as pd

    from reglab.report import sweeps

    rows = []
    for job in jobs:
        row = dict.fromkeys(sweeps.RUN_COLUMNS)
        row |= {
            "experiment": experiment,
            "status": "completed",
            "overrides": job["overrides"],
            "seed": job.get("seed", 0),
            "choices": job.get("choices", {}),
            "config": job.get("config", {}),
            "metrics": job.get("metrics", {}),
            "history": job.get("history", []),
        }
        row |= {k: job.get("metrics", {}).get(k) for k in sweeps.METRIC_COLUMNS}
        rows.append(row)
    return pd.DataFrame(rows, columns=list(sweeps.RUN_COLUMNS))
