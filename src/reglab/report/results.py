"""Runs as flat pandas frames, for notebooks: :func:`results` and :func:`history`.

``reglab.results("penalties")`` is one row per job of every ``penalties`` sweep (and single
run named so), completed, failed, unfinished and never-started alike, with flat columns:

* bookkeeping: ``experiment``, ``scale``, ``status``, ``seed``, ``wall_time_s``, ``error``,
  ``job``, ``path``, ``sweep``, ``git_commit``, ``when`` (the summary's time), and
  ``overrides`` (the job's command-line overrides, a list);
* every scalar metric of the summary (``test_error``, ``train_error``, ``steps_to_fit``,
  ``zero_weight_fraction``, …);
* the option chosen in each config group (``regularizer`` → ``"l1_proximal"``,
  ``corruption``, ``model`` …);
* every resolved config key, dotted (``dropout.p_hidden``, ``regularizer.lam``,
  ``data.train_size``; lists stay one value).

``frame.attrs`` names the columns of each kind (``"metrics"``, ``"choices"``, ``"config"``).
:func:`history` gives the learning curves in long form: one row per run, evaluation and
quantity (``step``, ``epoch``, ``metric``, ``value``); ``merge`` it with :func:`results`
on ``path`` for the config.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from reglab import dotted
from reglab.report import sweeps as sw
from reglab.summary import SUMMARY

#: Bookkeeping columns, in this order, first.
BOOKKEEPING = (
    "experiment",
    "scale",
    "status",
    "seed",
    "wall_time_s",
    "error",
    "job",
    "overrides",
    "path",
    "sweep",
    "git_commit",
    "when",
)


def runs(
    path_or_experiment: str | Path | list[str | Path] | None = None, scale: str | None = None
) -> pd.DataFrame:
    """The raw run rows (:data:`reglab.report.sweeps.RUN_COLUMNS`) of folders or an experiment.

    A folder is searched for sweeps and runs (a job folder is read alone); anything else is
    an experiment name, looked up as ``sweeps/<name>`` and ``runs/<name>`` under the log
    folder (``$REGLAB_LOG_DIR``, else ``logs``). None: everything under the log folder.
    """
    target = path_or_experiment
    if isinstance(target, list | tuple):  # several folders
        frames = [runs(t, scale) for t in target]
        return pd.concat(frames, ignore_index=True) if frames else runs(None, scale).iloc[:0]
    if target is None:
        frame = sw.find_runs([sw.default_log_dir()])
    elif Path(target).is_dir() and (Path(target) / SUMMARY).is_file():
        row = sw.read_job(Path(target), sweep=None)
        frame = pd.DataFrame([row], columns=list(sw.RUN_COLUMNS))
    elif Path(target).is_dir():
        frame = sw.find_runs([Path(target)])
    elif any(sep in str(target) for sep in ("/", "\\")) or str(target).startswith("."):
        raise FileNotFoundError(f"reglab.results: no such folder: {target}")
    else:
        log_dir = sw.default_log_dir()
        roots = [d for d in (log_dir / "sweeps" / target, log_dir / "runs" / target) if d.is_dir()]
        if not roots:
            raise FileNotFoundError(
                f"reglab.results: no sweeps/{target} or runs/{target} under {log_dir} "
                "(set REGLAB_LOG_DIR, or pass the folder itself)"
            )
        frame = sw.find_runs(roots)
        frame = frame[frame["experiment"] == str(target)]
    if scale is not None:
        frame = frame[frame["scale"] == scale]
    return frame.reset_index(drop=True)


def results(path_or_experiment: str | Path | None = None, scale: str | None = None) -> pd.DataFrame:
    """One row per job, flat columns: bookkeeping, metrics, choices, config (module doc)."""
    return flat(runs(path_or_experiment, scale))


def flat(frame: pd.DataFrame) -> pd.DataFrame:
    """Raw run rows (with nested ``config``, ``choices`` and ``metrics``) as flat columns."""
    metrics = [{k: v for k, v in (m or {}).items() if _scalar(v)} for m in frame["metrics"]]
    configs = [dotted.flatten(c, keep_empty=True) for c in frame["config"]]
    choices = [
        {  # experiment, scale: already bookkeeping columns; "scale/x@_global_": internal
            g: v
            for g, v in (c or {}).items()
            if g not in BOOKKEEPING and "/" not in g and "@" not in g
        }
        for c in frame["choices"]
    ]
    metric_cols = _union(metrics)
    config_cols = [c for c in _union(configs) if c not in BOOKKEEPING]
    taken = set(BOOKKEEPING) | set(metric_cols) | set(config_cols)
    choice_cols = {g: (g if g not in taken else f"{g} (choice)") for g in _union(choices)}
    data: dict[str, list[Any]] = {
        "experiment": list(frame["experiment"]),
        "scale": list(frame["scale"]),
        "status": list(frame["status"]),
        "seed": list(frame["seed"]),
        "wall_time_s": list(frame["wall_time_s"]),
        "error": list(frame["error"]),
        "job": list(frame["job"]),
        "overrides": [list(o or []) for o in frame["overrides"]],
        "path": list(frame["path"]),
        "sweep": list(frame["sweep"]),
        "git_commit": list(frame["git_commit"]),
        "when": list(pd.to_datetime(frame["mtime"].replace(0.0, None), unit="s")),
    }
    data |= {m: [row.get(m) for row in metrics] for m in metric_cols}
    data |= {col: [row.get(g) for row in choices] for g, col in choice_cols.items()}
    data |= {c: [row.get(c) for row in configs] for c in config_cols}
    out = pd.DataFrame(data, index=range(len(frame)))
    for col in [*metric_cols, "seed", "wall_time_s"]:
        if col in out:
            out[col] = _numeric(out[col])
    out.attrs.update(metrics=metric_cols, choices=list(choice_cols.values()), config=config_cols)
    return out


def history(
    path_or_experiment: str | Path | None = None,
    scale: str | None = None,
    metrics: list[str] | None = None,
) -> pd.DataFrame:
    """Learning curves in long form: experiment, scale, job, seed, status, path, step,
    epoch, metric, value (every evaluation of every run; ``metrics`` keeps only those)."""
    columns = ["experiment", "scale", "job", "seed", "status", "path", "step", "epoch"]
    rows = []
    for run in runs(path_or_experiment, scale).itertuples(index=False):
        ident = [run.experiment, run.scale, run.job, run.seed, run.status, run.path]
        for evaluation in run.history or []:
            step, epoch = evaluation.get("step"), evaluation.get("epoch")
            for key, value in evaluation.items():
                if key in ("step", "epoch") or (metrics is not None and key not in metrics):
                    continue
                if _scalar(value):
                    rows.append((*ident, step, epoch, key, value))
    out = pd.DataFrame(rows, columns=[*columns, "metric", "value"])
    out["value"] = _numeric(out["value"])
    return out


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _union(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _numeric(column: pd.Series) -> pd.Series:
    """Numbers as floats (None → NaN); a column with text in it stays as it is."""
    values = [v for v in column if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pd.to_numeric(column, errors="coerce")
    return column
