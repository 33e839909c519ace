"""What the report and the illustrations share, so that neither imports the other: the
PNGs' resolution and the registry of the model illustrations (the published numbers
both draw are :mod:`reglab.published`)."""

from __future__ import annotations

#: PNG resolution: readable when the page shows the figure at its full width.
DPI = 150

#: The model illustrations, in the order the report's page shows them: (PNG file stem,
#: the ``reglab.illustrate`` module that writes it).
ILLUSTRATIONS = (
    ("proximal_l1", "proximal_l1"),
    ("autoencoder_features", "autoencoder"),
    ("autoencoder_sparsity", "autoencoder"),
)
#: The ``reglab.illustrate`` modules in that order, each once (``reglab-report
#: --illustrate`` runs them all).
MODULES = tuple(dict.fromkeys(module for _, module in ILLUSTRATIONS))
