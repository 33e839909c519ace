"""One module per experiment: ``experiments/<name>.py`` beside ``conf/experiment/<name>.yaml``.

The registry is this package's modules, found by file name (names starting with ``_`` are
helpers, not experiments). A module holds, top to bottom, that experiment's figure and
tables, and exports two names::

    TITLE = "Srivastava et al. 2014 Table 9"     # what it mirrors, for the section heading

    def build(runs: pd.DataFrame) -> FigureReport:
        '''The paper's figure and tables from one sweep's completed runs.'''

``runs`` has one row per completed job (:data:`reglab.report.sweeps.RUN_COLUMNS`):
``seed``, the scalar metrics (``test_error``, ``train_error``, ``steps_to_fit`` …),
``config`` (resolved, nested), ``choices`` (the option chosen in each config group),
``overrides`` and ``history``. Optional: ``KEEP_EXTRA_SETTINGS = True`` draws settings
swept beside the experiment's own grid in one figure (their label in the column
:data:`EXTRA_SETTING`) instead of one figure each. A tiny but complete module::

    '''Srivastava et al. 2014 Table 9: test error % per regularizer.'''
    from reglab import published as pub
    from reglab.report.plotting import FigureReport, finish, new_figure
    from reglab.report.runinfo import regularization
    from reglab.report.stats import summarise

    TITLE = "Srivastava et al. 2014 Table 9"

    def build(runs):
        agg = summarise(runs.assign(method=regularization(runs)), "method", "test_error")
        fig, ax = new_figure()
        ax.bar(agg["method"], agg["mean"], yerr=agg["sd"].fillna(0), capsize=3)
        finish(ax, "method", "test error %", TITLE)   # (a real one overlays pub.table(…))
        agg.attrs["source"] = pub.citation("srivastava2014")
        return FigureReport(fig, "Test error %, mean ± s.d. over seeds.", [("By method", agg)])

Its pieces elsewhere: ``conf/experiment/<name>.yaml``, ``conf/scale/<name>/{quick,paper}.yaml``
and a ``kind: sweep`` entry in ``published.yaml`` (``tests/unit/test_report_experiments.py``
checks that all three name the same experiments). A sweep without a module of its own
gets :func:`reglab.report.generic.build`: its grid's axes against test error.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Collection
from functools import cache
from types import ModuleType

import pandas as pd

from reglab import published as pub
from reglab.report import generic
from reglab.report.plotting import FigureReport
from reglab.report.runinfo import swept_settings

#: The column in which runs carry the setting swept beside the grid (KEEP_EXTRA_SETTINGS).
EXTRA_SETTING = "extra setting"


@cache
def registry() -> dict[str, ModuleType]:
    """Experiment name → its module, in the order of ``published.yaml`` (the papers' order),
    then any others by name."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    order = {name: i for i, name in enumerate(pub.experiments("sweep"))}
    names.sort(key=lambda n: (order.get(n, len(order)), n))
    return {n: importlib.import_module(f"{__name__}.{n}") for n in names}


def experiments() -> tuple[str, ...]:
    """The experiments that have a module, in report order."""
    return tuple(registry())


def title(experiment: str) -> str:
    """The paper figure an experiment mirrors ('Srivastava et al. 2014 Fig 9a'), for headings;
    a sweep without a module of its own gets the generic figure."""
    module = registry().get(experiment)
    return module.TITLE if module else "Generic figure"


def plot_experiment(experiment: str, runs: pd.DataFrame) -> FigureReport:
    """The experiment's figure from its completed runs (the generic one without a module)."""
    module = registry().get(experiment)
    runs = runs.reset_index(drop=True)
    return module.build(runs) if module else generic.build(runs)


def plot_sweep(
    experiment: str,
    runs: pd.DataFrame,
    grid_keys: Collection[str] | None,
    ignore: Collection[str] = (),
) -> list[tuple[str, FigureReport]]:
    """The experiment's figure once per setting swept beside the experiment's own grid.

    Extra command-line sweeps add to a sweep's grid (``ARGS="optimizer.lr=0.01,0.1"``);
    averaging over them would blend different experiments into one mean ± s.d., so each
    such setting (``"optimizer.lr=0.01"``) gets its own figure. ``grid_keys`` are the keys of
    the sweep's own ``hydra.sweeper.params``; where unknown (None), nothing is split.
    ``ignore``: keys that never change a result (paths, parallelism), which runs of one job
    may differ in. Returns (setting, figure) pairs, the setting ``""`` for one figure.
    A sweep without a module of its own gets one generic figure over all its axes.
    """
    module = registry().get(experiment)
    if module is None:
        return [("", generic.build(runs.reset_index(drop=True), ignore=ignore))]
    if grid_keys is None:
        return [("", module.build(runs.reset_index(drop=True)))]
    settings = swept_settings(runs, exclude=(*grid_keys, *ignore, "seed"))
    if getattr(module, "KEEP_EXTRA_SETTINGS", False):
        return [("", module.build(runs.assign(**{EXTRA_SETTING: settings})))]
    return [
        (setting, module.build(runs[settings == setting].reset_index(drop=True)))
        for setting in sorted(settings.unique())
    ]
