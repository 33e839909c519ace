"""The reference the reglab.optim tests compare against: each member's solo run with its
own torch.optim optimizer (foreach=False) on its own parameters and gradients."""

from __future__ import annotations

import torch

from reglab.optim import MemberAdam, MemberAdamW, MemberSGD

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
