"""reglab: reproducible experiments on how regularization shapes neural networks."""

__version__ = "0.1.0"
