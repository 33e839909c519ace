"""reglab: reproducible experiments on how regularization shapes neural networks.

Importing it has no side effects (OmegaConf's resolvers: :mod:`reglab.resolvers`).
"""

__version__ = "0.1.0"


def load_model(run_dir):
    """The trained network of a completed run and its input transform (:mod:`reglab.load`)."""
    from reglab.load import load_model as load

    return load(run_dir)


def results(path_or_experiment=None, scale=None):
    """One row per job (completed and failed alike), flat columns: status, seed, wall time,
    every scalar metric, the chosen options and every config key, dotted. Takes an
    experiment name (``"penalties"``), a sweep, log or run folder, or None (everything
    under ``$REGLAB_LOG_DIR``, else ``logs``). See :mod:`reglab.report.results`."""
    from reglab.report.results import results as frame

    return frame(path_or_experiment, scale)


def history(path_or_experiment=None, scale=None, metrics=None):
    """Learning curves in long form: one row per run, evaluation and quantity (``step``,
    ``epoch``, ``metric``, ``value``); merge with :func:`results` on ``path``."""
    from reglab.report.results import history as frame

    return frame(path_or_experiment, scale, metrics)
