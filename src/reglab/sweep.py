"""What a sweep prints: a line per finished job while it runs, then each job's status,
the failures by name and the disk used.

A job that fails (bad config point, divergence, exception) writes its status into its
own ``summary.json`` and returns; the other jobs run on, whatever the launcher. While the
sweep runs, :class:`SweepReport` watches the job folders (:mod:`reglab.progress`); when it
ends, it reads the summaries, names the jobs that did not complete (a job this sweep
skipped because another process trains it is "running elsewhere"), and ``reglab-train``
exits non-zero if there are any.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import ClassVar

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from reglab import jobs
from reglab.progress import SweepWatcher, elsewhere, sweep_logger
from reglab.summary import COMPLETED, NO_SUMMARY, SUMMARY, UNREADABLE, is_elsewhere, read_summary

log = sweep_logger()
#: Hydra's joblib launcher logs its whole joblib.Parallel(...) call: this line only is dropped.
JOBLIB_LOGGER = "hydra_plugins.hydra_joblib_launcher._core"


class _NoJoblibBanner(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Joblib.Parallel(")


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
            status = UNREADABLE if (job / SUMMARY).exists() else NO_SUMMARY
        else:
            status = summary.get("status", UNREADABLE)
        statuses[str(job.relative_to(sweep_dir))] = status
    return statuses


class SweepReport(Callback):
    """Hydra callback: summarise the sweep in the launching process once all jobs ended.

    Hydra ignores what a callback raises, so the jobs that did not complete are left in
    :attr:`incomplete` for ``reglab-train`` to turn into a non-zero exit status.
    """

    incomplete: ClassVar[dict[str, str]] = {}
    # The watcher is SweepWatcher.current, not an attribute: submitit pickles callbacks.

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """Start the line-per-job watcher (:class:`reglab.progress.SweepWatcher`)."""
        joblib_log = logging.getLogger(JOBLIB_LOGGER)
        if not any(isinstance(f, _NoJoblibBanner) for f in joblib_log.filters):
            joblib_log.addFilter(_NoJoblibBanner())
        from omegaconf import OmegaConf

        try:
            multirun = OmegaConf.to_container(config, resolve=False)
            SweepWatcher(
                Path(config.hydra.sweep.dir),
                jobs.expected_jobs(multirun),
                jobs.dirname_excluded(multirun),
            ).start()
        except Exception as error:  # progress lines are a help; the sweep runs without them
            log.warning("no progress lines for this sweep: %s", error)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        watcher, SweepWatcher.current = SweepWatcher.current, None
        if watcher is not None:
            watcher.stop()
        statuses = job_statuses(sweep_dir)
        for job in statuses if watcher is not None else ():
            # skipped by this sweep: not its result, whatever the other process left there
            skipped = watcher.outcome.get(sweep_dir / job) or elsewhere(
                sweep_dir / job, watcher.sweep_id
            )
            if is_elsewhere(skipped):
                statuses[job] = skipped
        counts = Counter(status.split(" (")[0] for status in statuses.values())
        mib = disk_usage(sweep_dir) / 2**20
        log.info(
            "sweep %s: %s; %.1f MiB on disk",
            sweep_dir,
            ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            mib,
        )
        bad = {job: status for job, status in statuses.items() if status != COMPLETED}
        for job, status in bad.items():
            if is_elsewhere(status):
                log.warning("job %s: %s", job, status)
                continue
            error = (read_summary(sweep_dir / job) or {}).get("error", "")
            log.error("job %s: %s: %s", job, status, error)
        SweepReport.incomplete = bad
