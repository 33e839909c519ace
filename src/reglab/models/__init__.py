"""Models: MLPs and CNNs built from config, with retention-probability dropout."""

from reglab.models.cnn import CNN
from reglab.models.dropout import DropoutSpec, RetentionDropout, bind_dropout, set_stochastic
from reglab.models.mlp import MLP

__all__ = ["CNN", "MLP", "DropoutSpec", "RetentionDropout", "bind_dropout", "set_stochastic"]
