"""Models: MLPs and CNNs built from config, with retention-probability dropout."""

from reglab.models.cnn import CNN
from reglab.models.dropout import DropoutSpec, MaskSource, RetentionDropout, set_stochastic
from reglab.models.mlp import MLP

__all__ = ["CNN", "MLP", "DropoutSpec", "MaskSource", "RetentionDropout", "set_stochastic"]
