"""What a finished sweep prints: each job's status, the failures by name, the disk used.

A job that fails (bad config point, divergence, exception) writes its status into its
own ``summary.json`` and returns; the other jobs run on, whatever the launcher. When the
sweep ends, :class:`SweepReport` reads the summaries, names the jobs that did not
complete, and ``reglab-train`` exits non-zero if there are any.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import ClassVar

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from reglab import jobs
from reglab.summary import SUMMARY, read_summary

log = logging.getLogger("reglab")


def disk_usage(folder: Path) -> int:
    """Bytes used by the files below ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def job_statuses(sweep_dir: Path) -> dict[str, str]:
    """Job folder (relative to the sweep) → status from its summary (``no summary``: the
    job died before writing one), for the jobs this sweep asked for.

    The sweep's folder is stable, so it may also hold jobs of an earlier sweep with other
    overrides; those are left out (see :func:`reglab.jobs.expected_jobs`).
    """
    multirun = jobs.load_yaml(sweep_dir / jobs.MULTIRUN)
    expected, excluded = jobs.expected_jobs(multirun), jobs.dirname_excluded(multirun)
    statuses = {}
    for job in jobs.job_dirs(sweep_dir):
        summary = read_summary(job)
        if expected is not None:
            recorded = summary or {"overrides": jobs.load_yaml(job / jobs.OVERRIDES)}
            overrides = recorded.get("overrides")
            if jobs.job_key(overrides or [], excluded) not in expected:
                continue
        if summary is None:
            status = "unreadable" if (job / SUMMARY).exists() else jobs.NO_SUMMARY
        else:
            status = summary.get("status", "unreadable")
        statuses[str(job.relative_to(sweep_dir))] = status
    return statuses


class SweepReport(Callback):
    """Hydra callback: summarise the sweep in the launching process once all jobs ended.

    Hydra ignores what a callback raises, so the jobs that did not complete are left in
    :attr:`incomplete` for ``reglab-train`` to turn into a non-zero exit status.
    """

    incomplete: ClassVar[dict[str, str]] = {}

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        statuses = job_statuses(sweep_dir)
        counts = Counter(statuses.values())
        mib = disk_usage(sweep_dir) / 2**20
        log.info(
            "sweep %s: %s; %.1f MiB on disk",
            sweep_dir,
            ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            mib,
        )
        bad = {job: status for job, status in statuses.items() if status != "completed"}
        for job, status in bad.items():
            error = (read_summary(sweep_dir / job) or {}).get("error", "")
            log.error("job %s: %s: %s", job, status, error)
        SweepReport.incomplete = bad
