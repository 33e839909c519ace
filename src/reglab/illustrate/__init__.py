"""The lecture illustrations that train a small model, each a module run as a program.

``python -m reglab.illustrate.proximal_l1 --out DIR`` (and ``.autoencoder``) writes its PNG
figures and a JSON of their numbers into DIR; ``reglab-report --illustrate`` runs them all
and its page shows what they last wrote. Shipped in the package, so they work from a wheel.
"""

#: The modules, in the order the report shows their figures.
MODULES = ("proximal_l1", "autoencoder")
