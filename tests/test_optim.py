"""reglab.optim: stacked per-member optimizers and schedules against torch.optim run per member."""

from __future__ import annotations

import copy
import functools
import io
import warnings

import pytest
import torch
import yaml
from conftest import CONF

from reglab import optim
from reglab.optim import MemberAdam, MemberAdamW, MemberSchedules, MemberSGD, momentum_at

SHAPES = [(3, 4), (3,), (2, 3, 2)]
TORCH = {MemberSGD: torch.optim.SGD, MemberAdam: torch.optim.Adam, MemberAdamW: torch.optim.AdamW}


def member_grads(ws, seed: int, t: int):
    """Grads of member ``seed``'s loss at its step ``t`` (a noisy quadratic plus a tanh term)."""
    ws = [w.detach().clone().requires_grad_() for w in ws]
    gen = torch.Generator().manual_seed(seed * 10_000 + t)
    loss = torch.tanh(ws[0]).pow(3).sum()
    for w in ws:
        a = torch.rand(w.shape, generator=gen, dtype=torch.float64).to(w.dtype) + 0.5
        noise = torch.randn(w.shape, generator=gen, dtype=torch.float64).to(w.dtype)
        loss = loss + (a * (w - 1) ** 2).sum() + (noise * w).sum()
    return torch.autograd.grad(loss, ws)


class Member:
    """One member's solo run: its own params and torch.optim optimizer (foreach=False)."""

    def __init__(self, seed: int, cls, dtype=torch.float64, **kwargs) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.seed, self.kwargs, self.t = seed, kwargs, 0
        self.params = [
            torch.randn(s, generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
            for s in SHAPES
        ]
        self.opt = TORCH[cls](self.params, foreach=False, **kwargs)

    def step(self) -> None:
        for w, g in zip(self.params, member_grads(self.params, self.seed, self.t), strict=True):
            w.grad = g
        self.opt.step()
        self.t += 1


def stack(members, params=None):
    """Stacked params (from the members' current solo params unless given)."""
    if params is None:
        params = [torch.stack([m.params[i].detach() for m in members]) for i in range(len(SHAPES))]
    return [p.detach().clone().requires_grad_() for p in params]


def stacked_kwargs(members):
    """A config group per member → per-member lists, as reglab maps its configs."""
    keys = {key for m in members for key in m.kwargs}  # missing: torch's default
    return {key: [m.opt.defaults[key] for m in members] for key in keys}


def stacked_step(opt, params, members) -> None:
    grads = [member_grads([p[k] for p in params], m.seed, m.t) for k, m in enumerate(members)]
    for i, p in enumerate(params):
        p.grad = torch.stack([g[i] for g in grads])
    opt.step()


def run(opt, params, members, steps: int) -> None:
    """Step the stack and every member's solo run ``steps`` times."""
    for _ in range(steps):
        stacked_step(opt, params, members)
        for m in members:
            m.step()


def assert_same(params, members, dtype=torch.float64) -> None:
    tol = dict(rtol=1e-6, atol=1e-9) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    for k, m in enumerate(members):
        for p, w in zip(params, m.params, strict=True):
            torch.testing.assert_close(p[k].detach(), w.detach(), **tol)


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
    upload = optim._upload
    monkeypatch.setattr(optim, "_upload", lambda *a: uploads.append(1) or upload(*a))
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


# --- torch.optim.Optimizer API: K=1 equals torch.optim, param groups, state dicts, hooks ---

TORCH_API = [
    (MemberSGD, dict(lr=0.05)),
    (MemberSGD, dict(lr=0.05, momentum=0.9)),
    (MemberSGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (MemberSGD, dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=1e-2)),
    (MemberSGD, dict(lr=0.05, weight_decay=1e-2)),
    (MemberAdam, dict(lr=1e-2, weight_decay=1e-2)),
    (MemberAdamW, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1)),
]


def solo_params(dtype=torch.float64, members: int = 1):
    gen = torch.Generator().manual_seed(7)
    return [
        torch.randn((members, *s), generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
        for s in SHAPES
    ]


def grads_at(params, t: int) -> None:
    """Member k's grads at step t (its own seed): the same whatever optimizer holds them."""
    grads = [member_grads([p[k] for p in params], k, t) for k in range(params[0].shape[0])]
    for i, p in enumerate(params):
        p.grad = torch.stack([g[i] for g in grads])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("cls", "kwargs"), TORCH_API)
def test_one_member_equals_torch_optim_on_the_same_parameters(cls, kwargs, dtype):
    """K=1 on (1, ...) parameters: the same numbers as torch.optim (foreach=False), bitwise."""
    ours, theirs = solo_params(dtype), solo_params(dtype)
    opt, ref = cls(ours, **kwargs), TORCH[cls](theirs, foreach=False, **kwargs)
    assert isinstance(opt, torch.optim.Optimizer)
    for t in range(20):
        grads_at(ours, t)
        grads_at(theirs, t)
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert opt.steps == [20]


def test_per_member_hyperparameters_live_in_the_one_param_group():
    params = solo_params(members=3)
    opt = MemberSGD(params, lr=[0.1, 0.2, 0.3], momentum=0.9, dampening=0.1)
    assert isinstance(opt, torch.optim.Optimizer) and len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert group["params"] == params and opt.params is group["params"]
    for name in ("lr", "momentum", "weight_decay", "nesterov"):
        value = group[name]
        assert value.dtype == torch.float64 and value.shape == (3,) and value.device.type == "cpu"
    assert group["lr"].tolist() == [0.1, 0.2, 0.3] and group["dampening"] == 0.1
    assert type(opt).zero_grad is torch.optim.Optimizer.zero_grad
    adam = MemberAdamW(params, betas=[(0.9, 0.99), (0.8, 0.9), (0.7, 0.95)], eps=1e-6)
    group = adam.param_groups[0]
    assert group["beta1"].tolist() == [0.9, 0.8, 0.7] and group["beta2"][2] == 0.95
    assert group["weight_decay"].tolist() == [1e-2] * 3 and group["eps"] == 1e-6
    assert adam.betas == [(0.9, 0.99), (0.8, 0.9), (0.7, 0.95)]
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [torch.zeros(3, 2, requires_grad=True)]})


@pytest.mark.parametrize("write", ["float", "tensor", "in place"])
def test_writes_to_the_param_group_are_used_by_the_next_step(write, monkeypatch):
    """Code that sets ``param_groups[0]["lr"]`` (a scheduler, a user) is seen, uploaded once."""
    members = [Member(k, MemberSGD, lr=0.1, momentum=0.9) for k in range(2)]
    params = stack(members)
    opt = MemberSGD(params, lr=0.1, momentum=0.9)
    run(opt, params, members, 3)
    uploads = []
    upload = optim._upload
    monkeypatch.setattr(optim, "_upload", lambda *a: uploads.append(1) or upload(*a))
    group = opt.param_groups[0]
    if write == "float":
        group["lr"], lrs = 0.03, [0.03, 0.03]
    elif write == "tensor":
        group["lr"], lrs = torch.tensor([0.03, 0.07], dtype=torch.float64), [0.03, 0.07]
    else:
        group["lr"][1] = 0.07
        lrs = [0.1, 0.07]
    for m, lr in zip(members, lrs, strict=True):
        m.opt.param_groups[0]["lr"] = lr
    run(opt, params, members, 3)
    assert_same(params, members)
    assert opt.lr == lrs and len(uploads) == 1
    assert group["lr"].dtype == torch.float64 and group["lr"].shape == (2,)


@pytest.mark.parametrize("cls", [MemberSGD, MemberAdam, MemberAdamW])
def test_state_dict_round_trip_continues_exactly(cls):
    """torch's state_dict / load_state_dict: a fresh optimizer continues as if never stopped."""
    if cls is MemberSGD:
        kwargs = dict(lr=[0.05, 0.02, 0.1], momentum=[0.9, 0.0, 0.5], nesterov=[True, False, False])
    else:
        kwargs = dict(lr=[1e-2, 3e-2, 5e-3], betas=[(0.9, 0.99), (0.5, 0.9), (0.0, 0.999)])
    params = solo_params(members=3)
    opt = cls(params, **kwargs)
    for t in range(5):
        grads_at(params, t)
        opt.step()
    buffer = io.BytesIO()
    torch.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, buffer)
    for t in range(5, 12):
        grads_at(params, t)
        opt.step()

    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = [p.clone().requires_grad_() for p in saved["params"]]
    opt2 = cls(resumed, lr=0.5)  # other settings: all come from the state dict
    opt2.load_state_dict(saved["optimizer"])
    assert opt2.steps == [5, 5, 5] and set(opt2.state) == set(resumed)
    for t in range(5, 12):
        grads_at(resumed, t)
        opt2.step()
    for p, q in zip(params, resumed, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert opt2.hyperparameters == opt.hyperparameters and opt2.steps == [12, 12, 12]
    if cls is MemberSGD:
        assert opt2.param_groups[0]["momentum_started"].tolist() == [True, False, True]


def test_state_of_and_keep_follow_the_param_group():
    """keep() re-keys torch's per-parameter state to the new parameters; state dicts still work."""
    params = solo_params(members=3)
    opt = MemberAdam(params, lr=[1e-2, 2e-2, 3e-2])
    for t in range(3):
        grads_at(params, t)
        opt.step()
    exp_avg = opt.state[params[0]]["exp_avg"].clone()
    new = [p.detach()[[2, 0]].clone().requires_grad_() for p in params]
    opt.keep([2, 0], new)
    assert set(opt.state) == set(new) and opt.params == new
    assert torch.equal(opt.state[new[0]]["exp_avg"], exp_avg[[2, 0]])
    assert opt.param_groups[0]["lr"].tolist() == [3e-2, 1e-2] and opt.steps == [3, 3]
    assert len(opt.state_dict()["state"]) == len(new)
    assert opt.state_of(0)["hyperparameters"]["lr"] == 3e-2


def test_select_members_keeps_the_memory_layout():
    t = torch.arange(24.0).view(3, 4, 2).transpose(1, 2)  # (3, 2, 4), in-major strides
    picked = optim.select_members(t, torch.tensor([2, 0]))
    assert torch.equal(picked, t[[2, 0]]) and picked.stride() == t[:2].stride()


def test_closure_and_step_hooks():
    """step(closure) evaluates the loss with grad enabled; torch's step hooks run."""
    params = solo_params(members=2)
    opt = MemberSGD(params, lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda *a: calls.append("pre"))
    opt.register_step_post_hook(lambda *a: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = sum((p**2).sum() for p in params)
        loss.backward()
        return loss

    before = [p.detach().clone() for p in params]
    with torch.no_grad():
        loss = opt.step(closure)
    assert calls == ["pre", "post"] and loss.item() == sum((b**2).sum() for b in before)
    for p, b in zip(params, before, strict=True):
        torch.testing.assert_close(p.detach(), b - 0.1 * 2 * b)


def test_torch_lr_scheduler_drives_one_member():
    """A torch scheduler writes the (1,) lr tensor in place: the next step uses its value."""
    ours, theirs = solo_params(), solo_params()
    opt = MemberSGD(ours, lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(theirs, lr=0.1, momentum=0.9, foreach=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        schedulers = [
            torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) for o in (opt, ref)
        ]
        for t in range(9):
            for ps, o, s in zip((ours, theirs), (opt, ref), schedulers, strict=True):
                grads_at(ps, t)
                o.step()
                s.step()
    assert opt.lr == [ref.param_groups[0]["lr"]] == [0.1 * 0.5**4]
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_deepcopy_continues_identically():
    params = solo_params(members=2)
    opt = MemberAdam(params, lr=[1e-2, 2e-2])
    for t in range(3):
        grads_at(params, t)
        opt.step()
    twin = copy.deepcopy({"params": params, "opt": opt})
    for t in range(3, 6):
        for ps, o in ((params, opt), (twin["params"], twin["opt"])):
            grads_at(ps, t)
            o.step()
    for p, q in zip(params, twin["params"], strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
