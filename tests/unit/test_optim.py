"""reglab.optim: stacked per-member optimizers against torch.optim run per member (own
hyperparameters, changed between steps, members moved, dropped and kept apart).
MemberSchedules and momentum_at: test_schedules.py; the torch.optim.Optimizer API:
test_optim_torch_api.py; under Lightning: test_optim_lightning.py."""

from __future__ import annotations

import io

import pytest
import torch
import yaml
from conftest import CONF
from optim_reference import TORCH, Member, assert_same, member_grads, run, stack, stacked_kwargs

from reglab import optim
from reglab.optim import MemberAdam, MemberAdamW, MemberSGD
from reglab.schedules import momentum_at

SINGLE = [
    (MemberSGD, dict(lr=0.05, momentum=0.9)),
    (MemberSGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (MemberSGD, dict(lr=0.05, momentum=0.9, weight_decay=1e-2)),
    (MemberSGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    (MemberSGD, dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=1e-2)),
    (MemberSGD, dict(lr=0.05)),
    (MemberAdam, dict(lr=1e-2)),
    (MemberAdam, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2)),
    (MemberAdamW, dict(lr=1e-2, weight_decay=0.1)),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("cls", "kwargs"), SINGLE)
def test_single_member_matches_torch(cls, kwargs, dtype):
    members = [Member(0, cls, dtype, **kwargs)]
    params = stack(members)
    opt = cls(params, **kwargs)
    run(opt, params, members, 50)
    assert_same(params, members, dtype)
    assert opt.steps == [50]


PER_MEMBER = [
    (
        MemberSGD,
        [
            dict(lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False),
            dict(lr=0.05, momentum=0.5, weight_decay=1e-3, nesterov=True),
            dict(lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False),
            dict(lr=0.02, momentum=0.99, weight_decay=1e-2, nesterov=True),
        ],
    ),
    (
        MemberSGD,
        [
            dict(lr=lr, momentum=m, dampening=0.2)
            for lr, m in [(0.01, 0.9), (0.1, 0.0), (0.03, 0.5)]
        ],
    ),
    (
        MemberAdam,
        [
            dict(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0),
            dict(lr=1e-2, betas=(0.5, 0.99), weight_decay=1e-2),
            dict(lr=3e-2, betas=(0.95, 0.9), weight_decay=0.0),
            dict(lr=5e-3, betas=(0.0, 0.999), weight_decay=0.1),
        ],
    ),
    (
        MemberAdamW,
        [dict(lr=lr, betas=b, eps=1e-6) for lr, b in [(1e-2, (0.9, 0.99)), (3e-2, (0.7, 0.9))]],
    ),
]


@pytest.mark.parametrize(("cls", "configs"), PER_MEMBER)
def test_members_with_own_hyperparameters_match_separate_torch_runs(cls, configs):
    members = [Member(k, cls, **config) for k, config in enumerate(configs)]
    params = stack(members)
    opt = cls(params, **stacked_kwargs(members))
    run(opt, params, members, 40)
    assert_same(params, members)


@pytest.mark.parametrize("cls", [MemberSGD, MemberAdam])
def test_hyperparameters_changed_between_steps(cls):
    """Per-member ramps of momentum / beta1 (one starting at 0) and lr changes, as torch."""
    ramps = [(0.0, 0.9, 10), (0.5, 0.99, 25), (0.9, 0.9, 1)]
    members = [Member(k, cls, lr=0.02) for k in range(3)]
    params = stack(members)
    opt = cls(params, lr=0.02)
    for t in range(30):
        values = [momentum_at(t, *ramp) for ramp in ramps]
        lrs = [0.02 * (0.97**t), 0.02, 0.05 if t > 10 else 0.01]
        if cls is MemberSGD:
            opt.momentum = values
        else:
            opt.beta1 = values
        opt.set_hyperparameters(lr=lrs)
        for m, value, lr in zip(members, values, lrs, strict=True):
            group = m.opt.param_groups[0]
            group["lr"] = lr
            if cls is MemberSGD:
                group["momentum"] = value
            else:
                group["betas"] = (value, group["betas"][1])
        run(opt, params, members, 1)
    assert_same(params, members)
    assert opt.lr == pytest.approx(lrs)


def test_momentum_at_ramps_linearly_then_holds():
    """Srivastava et al. App. A.1: momentum from 0.5 rising linearly, then held."""
    expected = {0: 0.5, 1: 0.5 + 0.49 / 100, 50: 0.745, 100: 0.99, 101: 0.99, 500: 0.99}
    for step, value in expected.items():
        assert momentum_at(step, 0.5, 0.99, 100) == pytest.approx(value)
    assert momentum_at(3, 0.5, 0.9, 0) == 0.9


def test_unchanged_hyperparameters_are_not_uploaded(monkeypatch):
    uploads = []
    upload = optim.member._upload  # where the coefficient blocks are uploaded
    monkeypatch.setattr(optim.member, "_upload", lambda *a: uploads.append(1) or upload(*a))
    members = [Member(k, MemberSGD, lr=0.1, momentum=0.9) for k in range(2)]
    params = stack(members)
    opt = MemberSGD(params, lr=[0.1, 0.1], momentum=0.9)
    run(opt, params, members, 2)  # the first step starts the momentum buffers: two uploads
    assert len(uploads) == 2
    for _ in range(3):
        opt.set_hyperparameters(lr=[0.1, 0.1], momentum={1: 0.9})
        run(opt, params, members, 1)
    assert len(uploads) == 2
    opt.momentum = {1: 0.95}
    members[1].opt.param_groups[0]["momentum"] = 0.95
    run(opt, params, members, 2)
    assert len(uploads) == 3
    assert_same(params, members)


def test_config_groups_map_to_per_member_lists():
    for name, cls in [("sgd", MemberSGD), ("adam", MemberAdam), ("adamw", MemberAdamW)]:
        config = yaml.safe_load((CONF / "optimizer" / f"{name}.yaml").read_text())
        assert config.pop("_target_") == f"torch.optim.{TORCH[cls].__name__}"
        config.pop("_partial_")
        members = [Member(k, cls, **config) for k in range(2)]
        params = stack(members)
        run(cls(params, **stacked_kwargs(members)), params, members, 5)
        assert_same(params, members)


@pytest.mark.parametrize("cls", [MemberSGD, MemberAdam, MemberAdamW])
def test_a_member_moves_to_another_stack_and_continues(cls):
    """Train [a, b]; save b; load it into a fresh [c, b]: b continues as if never stopped."""
    if cls is MemberSGD:
        kw = [dict(lr=0.03 + 0.01 * k, momentum=0.9, nesterov=k > 0) for k in range(3)]
    else:
        kw = [dict(lr=0.01 * (k + 1), betas=(0.9 - 0.1 * k, 0.99)) for k in range(3)]
    a, b, c = (Member(k, cls, **kwargs) for k, kwargs in enumerate(kw))
    params = stack([a, b])
    opt = cls(params, **stacked_kwargs([a, b]))
    run(opt, params, [a, b], 7)
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_of(1), "params": [p[1].detach() for p in params]}, buffer)
    saved_params = [p[1].detach().clone() for p in params]
    run(opt, params, [a, b], 2)  # the old stack goes on; b's saved state must not change
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    assert all(t.device.type == "cpu" for st in saved["optimizer"]["state"] for t in st.values())
    for p, q in zip(saved["params"], saved_params, strict=True):
        assert torch.equal(p, q)

    b2 = Member(1, cls, **b.kwargs)  # b's solo run, replayed up to the save
    for _ in range(7):
        b2.step()
    new = [torch.stack([pc.detach(), pb]) for pc, pb in zip(c.params, saved["params"], strict=True)]
    params2 = stack([c, b2], new)
    opt2 = cls(params2, **stacked_kwargs([c, c]))  # b's slot starts with c's settings ...
    opt2.load_state_of(1, saved["optimizer"])  # ... and gets its own back
    assert opt2.hyperparameters == cls(stack([c, b]), **stacked_kwargs([c, b])).hyperparameters
    run(opt2, params2, [c, b2], 8)
    assert opt2.steps == [8, 15]
    assert_same(params2, [c, b2])


@pytest.mark.parametrize("cls", [MemberSGD, MemberAdam])
def test_keep_drops_members_and_leaves_them_untouched(cls):
    kw = [dict(lr=0.02 * (k + 1)) for k in range(3)]
    if cls is MemberSGD:
        extra = [dict(momentum=0.9, nesterov=True), dict(momentum=0.5), dict(momentum=0.0)]
        kw = [kwargs | e for kwargs, e in zip(kw, extra, strict=True)]
    members = [Member(k, cls, **kwargs) for k, kwargs in enumerate(kw)]
    params = stack(members)
    opt = cls(params, **stacked_kwargs(members))
    run(opt, params, members, 6)
    dropped = [p[1].detach().clone() for p in params]
    idx = [2, 0]
    new_params = [p.detach()[idx].clone().requires_grad_() for p in params]
    opt.keep(idx, new_params)
    kept = [members[i] for i in idx]
    assert opt.params is not params and opt.members == 2 and opt.steps == [6, 6]
    assert opt.lr == [kw[2]["lr"], kw[0]["lr"]]
    run(opt, new_params, kept, 6)
    assert_same(new_params, kept)
    for p, d in zip(params, dropped, strict=True):
        assert torch.equal(p[1].detach(), d)
    with pytest.raises(ValueError):
        opt.keep([0], new_params)  # params not matching the members kept


@pytest.mark.parametrize("cls", [MemberSGD, MemberAdam, MemberAdamW])
def test_a_member_never_touches_the_others(cls):
    """Non-finite grads in one member and a frozen member (lr 0) leave the rest as solo runs."""
    kw = dict(momentum=0.9) if cls is MemberSGD else dict(weight_decay=0.0)
    members = [Member(k, cls, lr=0.02, **kw) for k in range(3)]
    params = stack(members)
    opt = cls(params, lr=[0.02, 0.02, 0.0], **kw)
    frozen = [p[2].detach().clone() for p in params]
    for t in range(10):
        grads = [member_grads([p[k] for p in params], m.seed, m.t) for k, m in enumerate(members)]
        for i, p in enumerate(params):
            p.grad = torch.stack([g[i] for g in grads])
            if t == 3:
                p.grad[1] = float("nan")
                p.grad[1].view(-1)[0] = float("inf")
        opt.step()
        for m in members:
            m.step()
    assert_same(params, members[:1])
    for p, f in zip(params, frozen, strict=True):
        assert not p[1].isfinite().any()
        assert torch.equal(p[2].detach(), f)


def test_zero_grad():
    params = stack([Member(0, MemberSGD)])
    opt = MemberSGD(params, lr=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    opt.step()  # no grads: nothing moves
    assert opt.steps == [1]


def test_rejects_bad_input():
    params = stack([Member(k, MemberSGD) for k in range(2)])
    with pytest.raises(ValueError):
        MemberSGD(params, lr=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        MemberSGD(params, lr=0.1, members=3)
    with pytest.raises(ValueError):
        MemberSGD(params, lr=0.1, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError):
        MemberAdam(params, eps=[1e-8, 1e-6])
    with pytest.raises(TypeError):
        MemberAdam(params).set_hyperparameters(momentum=0.9)
    with pytest.raises(ValueError):
        MemberAdam(params).load_state_of(0, MemberSGD(params).state_of(0))
