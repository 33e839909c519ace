"""The lecture illustrations that train a small model, each a module run as a program.

``python -m reglab.illustrate.proximal_l1 --out DIR`` (and ``.autoencoder``) writes its PNG
figures and a JSON of their numbers into DIR; ``reglab-report --illustrate`` runs them all
(:data:`reglab.figures.MODULES`, in the page's order) and its page shows what they last
wrote. Shipped in the package, so they work from a wheel. Nothing here imports
:mod:`reglab.report`, nor the reverse: both share :mod:`reglab.figures`.
"""
