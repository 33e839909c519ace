"""reglab.schedules.MemberSchedules: each member's lr schedule follows its own epochs, as one
torch lr_scheduler per member would, and is saved and restored alone."""

from __future__ import annotations

import functools
import io
import warnings

import pytest
import torch
from optim_reference import Member, assert_same, run, stack

from reglab.optim import MemberSGD
from reglab.schedules import MemberSchedules

SCHEDULERS = [
    functools.partial(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5),
    functools.partial(torch.optim.lr_scheduler.ExponentialLR, gamma=0.9),
    functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=7),
    None,
]


@pytest.mark.parametrize("make_scheduler", SCHEDULERS)
def test_schedules_follow_each_members_own_epochs(make_scheduler):
    """Epochs of 2, 3 and 5 steps; lrs feed a MemberSGD; torch runs one scheduler per member."""
    base_lrs, epoch_steps = [0.1, 0.05, 0.2], [2, 3, 5]
    members = [Member(k, MemberSGD, lr=lr, momentum=0.9) for k, lr in enumerate(base_lrs)]
    torch_schedulers = [make_scheduler and make_scheduler(m.opt) for m in members]
    params = stack(members)
    opt = MemberSGD(params, lr=base_lrs, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schedules = MemberSchedules(make_scheduler, base_lrs)
        for t in range(40):
            opt.lr = schedules.lrs()
            run(opt, params, members, 1)
            for k, n in enumerate(epoch_steps):
                if (t + 1) % n == 0:
                    schedules.epoch_end(k)
                    if torch_schedulers[k] is not None:
                        torch_schedulers[k].step()
            assert schedules.lrs() == [m.opt.param_groups[0]["lr"] for m in members]
    assert_same(params, members)
    if make_scheduler is not None:
        assert len(set(schedules.lrs())) == 3


def test_one_schedule_is_saved_and_restored_alone():
    make = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=9)
    schedules = MemberSchedules(make, [0.1, 0.3])
    for _ in range(4):
        schedules.epoch_end(1)
    buffer = io.BytesIO()
    torch.save(schedules.state_dict_member(1), buffer)
    buffer.seek(0)
    fresh = MemberSchedules(make, [0.2, 0.7])
    fresh.epoch_end(0)
    fresh.load_state_dict_member(1, torch.load(buffer, weights_only=False))
    assert fresh.lrs()[1] == schedules.lrs()[1]
    for _ in range(6):
        schedules.epoch_end(1)
        fresh.epoch_end(1)
        assert fresh.lrs()[1] == schedules.lrs()[1]
    reference = MemberSchedules(make, [0.2])
    reference.epoch_end(0)
    assert fresh.lrs()[0] == reference.lrs()[0]
    fresh.keep([1])
    assert fresh.lrs() == [schedules.lrs()[1]] and len(fresh) == 1
