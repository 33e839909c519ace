"""The entry point: ``reglab-train [overrides]`` or ``python -m reglab.train [overrides]``.

Hydra composes the config from ``conf/``; :func:`reglab.run.run` builds data, model,
regularizer and trainer from their groups' ``_target_``s, trains, evaluates and writes
``summary.json`` into the run directory. A bad config or missing data ends the program
with one line on stderr and exit status 2, before any training.

This module imports no torch, Lightning or pandas: the config is composed and validated
first, and :mod:`reglab.run` is imported only for a config that is going to train, so
``--help``, ``--cfg job`` and every refused input take a fraction of a second.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from reglab.precheck import HELP, precheck, usage
from reglab.resolvers import CONFIG_DIR, register
from reglab.summary import SUMMARY, failed_summary
from reglab.validation import ConfigError, added_keys, validate

# Hydra composes the configs with reglab's resolvers: registered on import of this module,
# the entry point, which the job processes of the joblib and submitit launchers import too
# (to unpickle the task function) before they compose their job's config.
register()
__all__ = ["CONFIG_DIR", "app", "main"]

# Lightning hints at srun whenever SLURM's tools are installed; jobs that should use SLURM
# go through the submitit launcher instead.
warnings.filterwarnings("ignore", message=".*The `srun` command is available.*")


def main() -> None:
    """``reglab-train``: one-line errors for bad overrides, then the Hydra app."""
    try:
        if HELP & set(sys.argv[1:]):
            print(usage(CONFIG_DIR, sys.argv[1:]), end="")
            return
        precheck(CONFIG_DIR, sys.argv[1:])
    except ConfigError as error:
        print(f"reglab: error: {error}", file=sys.stderr)
        sys.exit(2)
    app()
    from reglab.sweep import SweepReport  # the sweep callback Hydra instantiated, if any

    if SweepReport.incomplete:
        print(
            f"reglab: {len(SweepReport.incomplete)} jobs of the sweep did not complete",
            file=sys.stderr,
        )
        sys.exit(1)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def app(cfg: DictConfig) -> float | None:
    """Run one job; returns its final test error % (the value Hydra sweepers read)."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        validate(cfg, added_keys(hydra_cfg.overrides.task), hydra_cfg.runtime.choices)
    except ConfigError as error:
        return _refuse(error, hydra_cfg, multirun)
    from reglab.data.sources import DataError  # torch: only for a config that trains
    from reglab.run import RunFailed, run

    try:
        summary = run(cfg, Path(hydra_cfg.runtime.output_dir))
    except (ConfigError, DataError, RunFailed) as error:
        return _refuse(error, hydra_cfg, multirun, ran=isinstance(error, RunFailed))
    return summary["metrics"].get("test_error")


def _refuse(error: Exception, hydra_cfg, multirun: bool, ran: bool = False) -> None:
    """A sweep's job records its failure and the sweep goes on (and reports it); a single
    run says why in one line: exit status 2, or 1 for a run that failed while training."""
    if multirun:
        _record_failure(error, hydra_cfg, ran)
        return None
    if ran:
        print(f"reglab: run {error.status}: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"reglab: error: {error}", file=sys.stderr)
    sys.exit(2)


def _record_failure(error: Exception, hydra_cfg, ran: bool) -> None:
    """A job's failure in its summary.json, unless the run already wrote one."""
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if ran and (out_dir / SUMMARY).exists():
        return
    failed_summary(out_dir, str(error), list(hydra_cfg.overrides.task), hydra_cfg.runtime.choices)


if __name__ == "__main__":
    main()
