"""A job's life before and after training: its lock, the rerun guard, its failure.

:func:`prepare` turns a job into a :class:`~reglab.member.Member` this process trains
(holding the job's lock, resuming its checkpoint) or into the summary that says why not:
completed before with the same config (skipped), trained by another process (running
elsewhere, :mod:`reglab.locks`), or a config or data that cannot train (failed, one
writer: :func:`reglab.summary.failed_summary`). A config changed since an earlier run
moves that run aside first (:mod:`reglab.rerun`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, open_dict

from reglab.locks import JobLock, skipped
from reglab.member import Job, Member, read_checkpoint, resolved
from reglab.rerun import changed_settings, set_aside
from reglab.summary import COMPLETED, failed_summary, read_summary
from reglab.validation import ConfigError, validate

log = logging.getLogger("reglab")


def prepare(job: Job, record_failures: bool) -> Member | dict:
    """The job's member, holding its lock; or its summary when this process does not train
    it (completed, bad config, running elsewhere)."""
    out_dir = Path(job.out_dir)
    job.cfg = _in_folder(job.cfg, out_dir, job.overrides)
    config = resolved(job.cfg)
    previous = read_summary(out_dir) or {}
    if previous.get("status") == COMPLETED and not changed_settings(previous.get("config"), config):
        log.info("%s: already completed, skipping", out_dir)
        return previous
    lock = JobLock(out_dir)
    owner = lock.acquire()
    if owner is not None:
        return skipped(out_dir, owner, job.overrides)
    if lock.previous is not None:
        log.warning("%s: taking over from %s, which is gone", out_dir, lock.previous.describe())
    member = None
    try:
        member = _prepare_locked(job, config, out_dir, record_failures)
        return member
    finally:
        if isinstance(member, Member):
            member.lock = lock
        else:
            lock.release()


def _prepare_locked(job: Job, config: dict, out_dir: Path, record_failures: bool):
    """:func:`prepare` once this process holds the job's lock."""
    previous = read_summary(out_dir)
    saved = read_checkpoint(out_dir / "checkpoints" / "last.ckpt")
    recorded = (previous or {}).get("config") or (saved or {}).get("reglab_config")
    changes = changed_settings(recorded, config)
    if changes:
        moved = set_aside(out_dir)
        shown = "; ".join(changes[:3]) + (f"; {len(changes) - 3} more" if len(changes) > 3 else "")
        log.warning(
            "%s: the config changed since its earlier run (%s); that run moved to %s",
            out_dir,
            shown,
            moved,
        )
        previous = saved = None
    if previous and previous.get("status") == COMPLETED:
        log.info("%s: already completed, skipping", out_dir)
        return previous
    try:
        validate(job.cfg)
    except ConfigError as error:
        return failed(job, str(error), record_failures)
    return Member(job, config, saved)


def _in_folder(cfg: DictConfig, out_dir: Path, overrides: list[str]) -> DictConfig:
    """The job's loggers write into its folder, named after its overrides (as Hydra's
    ``${hydra:runtime.output_dir}`` does for a job that Hydra launched itself)."""
    cfg = cfg.copy()
    with open_dict(cfg):
        for spec in (cfg.get("logger") or {}).values():
            if "save_dir" in spec:
                spec.save_dir = str(out_dir)
            if "Wandb" in str(spec.get("_target_", "")):
                spec.name = ",".join(overrides) or out_dir.name
    return cfg


def failed(job: Job, message: str, record: bool) -> dict:
    """A job that cannot train; its summary is written if ``record`` (a sweep's job: the
    sweep goes on and reports it; a single run just says why, in one line)."""
    return failed_summary(job.out_dir, message, job.overrides, job.choices, write=record)
