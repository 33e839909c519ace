#!/usr/bin/env python
"""Where a stacked step's time goes, part by part, in one process (``make bench-parts``).

``make bench`` times whole steps through the Trainer; this times the parts of one step of
the batchnorm experiment's net (784-100-100-100-10, sigmoid, BN; batch 60, reglab's
``MLP``) beside what each could cost at best, interleaved block by block so a neighbour's
burst hits every part alike (each figure: the best block's mean):

* ``bare`` / ``VmapOrder`` / ``auto, K=1`` / ``false, K=1`` / ``vmap, K=1``: one model's
  forward and backward called plainly, under :class:`~reglab.models.vmap_order.VmapOrder`,
  as a stack of one called directly with ``vmap_solo=auto`` (once its trial chose the
  direct call: ``VmapOrder`` plus binding the member's squeezed tensors) and with
  ``vmap_solo=false`` (the net as written, its tensors squeezed and bound), and as a stack
  of one through ``torch.func.vmap``;
* ``vmap, K`` / ``baddbmm, K``: K members' forward and backward through
  :class:`~reglab.models.stack.StackedNet`, and through a hand-written stack (one
  ``baddbmm`` per layer, batchnorm over dim 1 of (K, B, C)): the floor without per-layer
  code removed;
* ``MemberSGD, K`` / ``torch SGD × K``: one momentum-SGD update of K members at once, and
  of K separate models with ``torch.optim.SGD(foreach=True)``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
import torch.nn.functional as F

from reglab.models.mlp import MLP
from reglab.models.stack import StackedNet
from reglab.models.vmap_order import VmapOrder
from reglab.optim import MemberSGD

HIDDEN, BATCH, CLASSES = (100, 100, 100), 60, 10


def net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return MLP((1, 28, 28), CLASSES, HIDDEN, activation="sigmoid", batchnorm=True).train()


def fwd_bwd(model, x, y, mode=None):
    def run() -> None:
        if mode is None:
            out = model(x)
        else:
            with mode():
                out = model(x)
        F.cross_entropy(out.flatten(0, -2), y.flatten()).backward()

    return run


def hand_written(k: int, x, y):
    """The stack without per-layer code removed: (K, in, out) weights, one baddbmm a layer."""
    sizes = [784, *HIDDEN, CLASSES]
    w = [(torch.randn(k, i, o) / i**0.5).requires_grad_() for i, o in itertools.pairwise(sizes)]
    b = [torch.zeros(k, 1, o, requires_grad=True) for o in sizes[1:]]
    gamma = [torch.ones(k, 1, o, requires_grad=True) for o in HIDDEN]
    beta = [torch.zeros(k, 1, o, requires_grad=True) for o in HIDDEN]

    def run() -> None:
        h = x.flatten(2)
        for j in range(len(w)):
            h = torch.baddbmm(b[j], h, w[j])
            if j < len(HIDDEN):
                mean, var = h.mean(1, keepdim=True), h.var(1, unbiased=False, keepdim=True)
                h = torch.sigmoid((h - mean) * torch.rsqrt(var + 1e-5) * gamma[j] + beta[j])
        F.cross_entropy(h.flatten(0, 1), y.flatten()).backward()

    return run


def auto_solo(x) -> StackedNet:
    """A stack of one after ``vmap_solo=auto``'s trial step chose the direct call."""
    stacked = StackedNet([net(0)]).train()
    differs = stacked.choose_solo_path(x)
    if differs:
        raise SystemExit(f"bench_parts: vmap_solo=auto stays vmapped here: {differs}")
    return stacked


def optimizer_steps(k: int):
    stacked = StackedNet([net(i) for i in range(k)])
    member = MemberSGD(list(stacked.parameters()), lr=0.05, momentum=0.9)
    solos = [net(i) for i in range(k)]
    torch_sgd = [
        torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, foreach=True) for m in solos
    ]
    for p in [*stacked.parameters(), *(p for m in solos for p in m.parameters())]:
        p.grad = torch.randn_like(p)
    return member.step, lambda: [opt.step() for opt in torch_sgd]


def measure(parts: dict, blocks: int, calls: int) -> dict[str, float]:
    best = dict.fromkeys(parts, float("inf"))
    for fn in parts.values():  # warm-up
        for _ in range(5):
            fn()
    for _ in range(blocks):
        for name, fn in parts.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return {name: 1000 * s for name, s in best.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=16, help="stack size K")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--blocks", type=int, default=10, help="timed blocks per part")
    p.add_argument("--calls", type=int, default=20, help="calls per block")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    k = args.members
    x, y = torch.rand(k, BATCH, 1, 28, 28), torch.randint(0, CLASSES, (k, BATCH))
    solo = net(0)
    member_sgd, torch_sgd = optimizer_steps(k)
    parts = {
        "bare": fwd_bwd(solo, x[0], y[0]),
        "VmapOrder": fwd_bwd(solo, x[0], y[0], VmapOrder),
        "auto, K=1": fwd_bwd(auto_solo(x[:1]), x[:1], y[:1]),
        "false, K=1": fwd_bwd(StackedNet([net(0)], vmap_solo=False).train(), x[:1], y[:1]),
        "vmap, K=1": fwd_bwd(StackedNet([net(0)]).train(), x[:1], y[:1]),
        f"vmap, K={k}": fwd_bwd(StackedNet([net(i) for i in range(k)]).train(), x, y),
        f"baddbmm, K={k}": hand_written(k, x, y),
        f"MemberSGD, K={k}": member_sgd,
        f"torch SGD × {k}": torch_sgd,
    }
    ms = measure(parts, args.blocks, args.calls)
    print(f"bench_parts: K={k}, {args.threads} threads, torch {torch.__version__}")
    print(f"{'part':<18} {'ms':>8} {'ms/member':>10}")
    for name, value in ms.items():
        per = value / k if f"K={k}" in name or f"× {k}" in name else value
        print(f"{name:<18} {value:8.3f} {per:10.3f}")
    ratios = {
        "VmapOrder ÷ bare (forward+backward, K=1)": ms["VmapOrder"] / ms["bare"],
        "vmap_solo=auto K=1 ÷ bare": ms["auto, K=1"] / ms["bare"],
        "vmap_solo=false K=1 ÷ bare": ms["false, K=1"] / ms["bare"],
        "vmap K=1 ÷ bare": ms["vmap, K=1"] / ms["bare"],
        f"vmap ÷ hand-written baddbmm stack, K={k}": ms[f"vmap, K={k}"] / ms[f"baddbmm, K={k}"],
        f"vmap K={k} per member ÷ bare": ms[f"vmap, K={k}"] / k / ms["bare"],
        f"MemberSGD ÷ torch SGD × {k}": ms[f"MemberSGD, K={k}"] / ms[f"torch SGD × {k}"],
    }
    print("ratios:")
    for name, value in ratios.items():
        print(f"  {name:<44} {value:.2f}")


if __name__ == "__main__":
    main()
