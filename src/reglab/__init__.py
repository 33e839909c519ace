"""reglab: reproducible experiments on how regularization shapes neural networks."""

from reglab.resolvers import register as _register_resolvers

__version__ = "0.1.0"

_register_resolvers()


def load_model(run_dir):
    """The trained network of a completed run and its input transform (:mod:`reglab.load`)."""
    from reglab.load import load_model as load

    return load(run_dir)
