"""The entry point: ``reglab-train [overrides]`` or ``python -m reglab.train [overrides]``.

Hydra composes the config from ``conf/``; :func:`reglab.run.run` builds data, model,
regularizer and trainer from their groups' ``_target_``s, trains, evaluates and writes
``summary.json`` into the run directory. A bad config or missing data ends the program
with one line on stderr and exit status 2, before any training.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from reglab.data.sources import DataError
from reglab.precheck import precheck
from reglab.run import RunFailed, run
from reglab.summary import SUMMARY, write_json_atomic
from reglab.sweep import SweepReport
from reglab.validation import ConfigError, validate

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# Lightning hints at srun whenever SLURM's tools are installed; jobs that should use SLURM
# go through the submitit launcher instead.
warnings.filterwarnings("ignore", message=".*The `srun` command is available.*")


def main() -> None:
    """``reglab-train``: one-line errors for bad overrides, then the Hydra app."""
    try:
        precheck(CONFIG_DIR, sys.argv[1:])
    except ConfigError as error:
        print(f"reglab: error: {error}", file=sys.stderr)
        sys.exit(2)
    app()
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
        validate(cfg)
        summary = run(cfg, Path(hydra_cfg.runtime.output_dir))
    except (ConfigError, DataError, RunFailed) as error:
        if multirun:  # recorded in the job's summary; the sweep goes on and reports it
            _record_failure(error, hydra_cfg)
            return None
        if isinstance(error, RunFailed):
            print(f"reglab: run {error.status}: {error}", file=sys.stderr)
            sys.exit(1)
        print(f"reglab: error: {error}", file=sys.stderr)
        sys.exit(2)
    return summary["metrics"].get("test_error")


def _record_failure(error: Exception, hydra_cfg) -> None:
    """A job's failure in its summary.json, unless the run already wrote one."""
    summary_path = Path(hydra_cfg.runtime.output_dir) / SUMMARY
    if isinstance(error, RunFailed) and summary_path.exists():
        return
    failed = {
        "status": "failed",
        "error": str(error),
        "overrides": list(hydra_cfg.overrides.task),
        "metrics": {},
    }
    write_json_atomic(summary_path, failed)


if __name__ == "__main__":
    main()
