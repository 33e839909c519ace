"""reglab's stacked launcher for Hydra: compatible jobs of a sweep train as one stack.

``hydra/launcher=reglab_stacked`` (``launcher=stacked`` in reglab's configs) runs the
stacks in this process or in worker processes; ``hydra/launcher=reglab_stacked_slurm``
(``launcher=stacked_slurm``) submits one SLURM job per stack through submitit. Hydra
imports every module here when it starts, so none imports torch, Lightning or pandas.
"""

__version__ = "0.1.0"
