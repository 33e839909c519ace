"""``reglab-train`` in the test process: a job's outputs without a new interpreter.

A subprocess pays about 5 s of imports (torch, Lightning) before its first step; most
end-to-end tests only need what a run writes, so they call :func:`run_main`, which runs
``reglab.train.main()`` as the console script does (``sys.argv``, the working folder, the
environment) and returns a :class:`subprocess.CompletedProcess` like ``conftest.run_cli``.
Around each call it restores the process-wide state a run changes, so runs can follow one
another in one process: Hydra's singletons and logging handlers, reglab's sweep state
(:attr:`reglab.sweep.SweepReport.incomplete`, the sweep watcher, the progress-bar switch),
torch's thread count, determinism flags and random state, and the environment.

A run whose config leaves ``threads`` unset trains on one torch thread here (a subprocess
would take one per core): the test process may share the cores with other pytest workers,
and torch's spinning OpenMP threads on busy cores made such runs up to four times slower.

Where the process boundary is the point, tests keep ``conftest.run_cli``: signals and
kill -9, locks between processes, what the console shows (warnings reach pytest's recorder
here, not stderr), refusals that must import no torch, the wheel, SLURM.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from reglab import progress, train
from reglab.progress import SweepWatcher, sweep_logger
from reglab.sweep import SweepReport

sweep_logger()  # reglab.sweep's console logger exists before the first run's snapshot


def _loggers() -> dict[logging.Logger, tuple]:
    found = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    found = [x for x in found if isinstance(x, logging.Logger)]
    return {x: (x.handlers[:], x.filters[:], x.level, x.propagate, x.disabled) for x in found}


def _restore_loggers(before: dict[logging.Logger, tuple]) -> None:
    """Every logger as it was; the handlers a run added (Hydra's console and train.log
    handlers, bound to this run's captured streams) are closed."""
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if not isinstance(logger, logging.Logger):
            continue
        kept = before.get(logger, ([], None, None, None, None))[0]
        for handler in logger.handlers[:]:
            if handler not in kept:
                logger.removeHandler(handler)
                handler.close()
        if logger in before:
            handlers, filters, level, propagate, disabled = before[logger]
            logger.handlers[:], logger.filters[:] = handlers, filters
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled
    for handler in before[logging.getLogger()][0]:
        handler.filters[:] = [f for f in handler.filters if type(f).__module__ != "reglab.progress"]


def _reset_hydra() -> None:
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
    SweepReport.incomplete = {}
    if SweepWatcher.current is not None:  # a sweep that raised never reached its end
        SweepWatcher.current.stop_event.set()
        SweepWatcher.current = None


@contextlib.contextmanager
def isolated():
    """Process-wide state as it was before, whatever the run in this block changed."""
    env = dict(os.environ)
    loggers = _loggers()
    bar = dict(progress._BAR)
    threads = torch.get_num_threads()
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    rng = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    argv = sys.argv[:]
    _reset_hydra()
    torch.set_num_threads(1)  # unless the run's config sets ``threads`` (see above)
    try:
        yield
    finally:
        sys.argv[:] = argv
        _reset_hydra()
        _restore_loggers(loggers)
        progress._BAR.clear()
        progress._BAR.update(bar)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        torch.random.set_rng_state(rng[0])
        np.random.set_state(rng[1])
        random.setstate(rng[2])
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)


def run_main(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``reglab-train *args`` run from ``cwd`` in this process: its exit status and what it
    printed (stdout, stderr), as :func:`conftest.run_cli` returns them."""
    out, err = io.StringIO(), io.StringIO()
    returncode = 0
    with (
        isolated(),
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        os.environ |= {"PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
        # what reglab.train filters at import, which pytest's per-test filters undo
        warnings.filterwarnings("ignore", message=".*The `srun` command is available.*")
        sys.argv[:] = [train.__file__, *args]
        try:
            train.main()
        except SystemExit as exit_:
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
                returncode = 1
            else:
                returncode = exit_.code or 0
    return subprocess.CompletedProcess(
        ["reglab-train", *args], returncode, out.getvalue(), err.getvalue()
    )


def run_main_ok(*args: str, run_dir: Path, cwd: Path) -> dict:
    """:func:`run_main` into ``run_dir``; requires success; returns the run's summary."""
    import json

    result = run_main(*args, f"hydra.run.dir={run_dir}", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((Path(run_dir) / "summary.json").read_text())
