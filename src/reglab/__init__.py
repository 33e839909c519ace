"""reglab: reproducible experiments on how regularization shapes neural networks."""

from reglab.resolvers import register as _register_resolvers

__version__ = "0.1.0"

_register_resolvers()
