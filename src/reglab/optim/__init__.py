"""Optimizers for stacked training: K members of one architecture, each with its own settings.

Every parameter has a leading member axis of size K. ``MemberSGD``/``MemberAdam``/``MemberAdamW``
are ``torch.optim.Optimizer``s (one param group) applying torch.optim's single-tensor update to
each member with its own ``lr``, ``momentum``/``betas`` and ``weight_decay``: (K,) tensors in
``param_groups[0]``, uploaded as (K, 1, 1, ...) blocks only when they change. Updates are
elementwise per member, so a member can be saved (``state_of``), moved to another stack
(``load_state_of``) or dropped (``keep``) without changing anyone's trajectory. Each op runs
on every parameter at once (``torch._foreach_*``). Per-member lr schedules: :mod:`reglab.schedules`.
"""

from reglab.optim import member
from reglab.optim.adam import MemberAdam, MemberAdamW
from reglab.optim.member import PerMember, select_members
from reglab.optim.sgd import MemberSGD

__all__ = ["MemberAdam", "MemberAdamW", "MemberSGD", "PerMember", "member", "select_members"]
