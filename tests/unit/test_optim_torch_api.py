"""reglab.optim as a torch.optim.Optimizer: K=1 equals torch.optim, one param group holds
the per-member hyperparameters, state dicts round-trip, hooks, closures, torch lr
schedulers and deepcopy work."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch
from optim_reference import SHAPES, TORCH, Member, assert_same, member_grads, run, stack

from reglab import optim
from reglab.optim import MemberAdam, MemberAdamW, MemberSGD

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
    for p in params:
        p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=False)  # torch's contract, both ways
    assert all(p.grad is not None and not p.grad.any() for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
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
    upload = optim.member._upload  # where the coefficient blocks are uploaded
    monkeypatch.setattr(optim.member, "_upload", lambda *a: uploads.append(1) or upload(*a))
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
