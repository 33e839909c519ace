"""Evaluation outside the training loop: error in %, Monte-Carlo dropout, activation probes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from reglab.models.dropout import dropout_layers, set_mask_counter, set_stochastic

ACTIVATION_TYPES = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU)


def error_percent(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Classification error in percent (the papers plot error, not accuracy)."""
    return (logits.argmax(dim=1) != labels).float().mean() * 100.0


@torch.no_grad()
def mc_log_probs(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    """log of the mean softmax over ``samples`` stochastic passes (Srivastava §7.5); pass
    i draws the masks of counter ``-(i + 1)``, as a stack's members do, and the model's
    counters are restored afterwards."""
    layers = [layer for _, layer in dropout_layers(model)]
    counters = [layer.counter.clone() for layer in layers]
    set_stochastic(model, True)
    try:
        probs = 0
        for i in range(samples):
            set_mask_counter(model, -(i + 1))
            probs = probs + F.softmax(model(x), dim=1)
    finally:
        set_stochastic(model, False)
        for layer, counter in zip(layers, counters, strict=True):
            layer.counter.copy_(counter)
    return (probs / samples).clamp_min(1e-12).log()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    to_input: Callable[[torch.Tensor], torch.Tensor],
    mc_samples: int = 0,
) -> dict[str, float]:
    """Mean cross-entropy and error % of ``model`` in eval mode over all ``batches``.

    With ``mc_samples = k > 0`` the prediction averages k stochastic nets instead of
    using the weight-scaled (deterministic) net.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    wrong = torch.zeros((), device=device)
    count = 0
    for images, labels in batches:
        x, y = to_input(images.to(device)), labels.to(device)
        log_probs = mc_log_probs(model, x, mc_samples) if mc_samples else model(x)
        loss_sum += F.cross_entropy(log_probs, y, reduction="sum")
        wrong += (log_probs.argmax(dim=1) != y).sum()
        count += len(y)
    model.train(was_training)
    return {"loss": float(loss_sum) / count, "error": 100.0 * float(wrong) / count}


@torch.no_grad()
def activation_probe(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Per hidden layer: mean activation and fraction of exactly-zero activations.

    Also the 15th/50th/85th percentiles of the input to the first unit of the last hidden
    nonlinearity, the quantity Ioffe & Szegedy (2015) track in Fig. 1(b, c).
    """
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
    records: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [
        m.register_forward_hook(
            lambda m, inp, out, name=name: records.__setitem__(
                name, (inp[0].detach(), out.detach())
            )
        )
        for name, m in layers
    ]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    stats: dict[str, float] = {}
    for name, _ in layers:
        _, out = records[name]
        stats[f"act/{name}/mean"] = float(out.mean())
        stats[f"act/{name}/zero_fraction"] = float((out == 0).float().mean())
    if layers:
        pre, _ = records[layers[-1][0]]
        unit = pre.flatten(2).mean(2)[:, 0] if pre.dim() > 2 else pre[:, 0]
        q = torch.quantile(unit.float(), torch.tensor([0.15, 0.5, 0.85], device=unit.device))
        stats.update(
            {f"probe/last_preact_p{int(p)}": float(v) for p, v in zip((15, 50, 85), q, strict=True)}
        )
    return stats


# -- members of a stack (reglab.models.stack.StackedNet): one value per member ----------
@torch.no_grad()
def evaluate_members(
    net, data, split: str, members: torch.Tensor, mc_samples: int = 0
) -> tuple[list[float], list[float]]:
    """Mean cross-entropy and error % of each of ``members`` over ``split`` in eval mode,
    or of averaging ``mc_samples`` stochastic passes (Srivastava §7.5) when > 0."""
    was_training = net.training
    net.eval()
    k = len(members)
    loss_sum = torch.zeros(k, device=members.device, dtype=torch.float64)
    wrong = torch.zeros(k, device=members.device, dtype=torch.int64)
    count = torch.zeros_like(wrong)
    for x, y, valid in data.eval_batches(split, members):
        if mc_samples:
            net.set_stochastic(True)
            try:
                probs = 0
                for i in range(mc_samples):
                    net.set_mask_counter(-(i + 1))
                    probs = probs + F.softmax(net(x, members=members).float(), dim=-1)
            finally:
                net.set_stochastic(False)
            log_probs = (probs / mc_samples).clamp_min(1e-12).log()
        else:
            log_probs = net(x, members=members).float()
        losses = F.cross_entropy(log_probs.flatten(0, 1), y.flatten(), reduction="none")
        loss_sum += (losses.view_as(y) * valid).sum(1)
        wrong += ((log_probs.argmax(-1) != y) & valid).sum(1)
        count += valid.sum(1)
    net.train(was_training)
    n = count.tolist()
    return (
        [s / c if c else math.nan for s, c in zip(loss_sum.tolist(), n, strict=True)],
        [100.0 * w / c if c else math.nan for w, c in zip(wrong.tolist(), n, strict=True)],
    )


@torch.no_grad()
def probe_members(net, x: torch.Tensor, members: torch.Tensor) -> list[dict[str, float]]:
    """:func:`activation_probe` for each of ``members`` on its own images ``x`` (k, N, ...)."""
    was_training = net.training
    net.eval()
    try:
        _, records = net.forward_recording(x, members, ACTIVATION_TYPES)
    finally:
        net.train(was_training)
    columns: dict[str, torch.Tensor] = {}
    names = list(records)
    for name in names:
        out = records[name][1].float().flatten(1)
        columns[f"act/{name}/mean"] = out.mean(1)
        columns[f"act/{name}/zero_fraction"] = (out == 0).float().mean(1)
    if names:
        pre = records[names[-1]][0].float()
        unit = pre.flatten(3).mean(3)[:, :, 0] if pre.dim() > 3 else pre[:, :, 0]
        q = torch.quantile(unit, torch.tensor([0.15, 0.5, 0.85], device=unit.device), dim=1)
        for i, p in enumerate((15, 50, 85)):
            columns[f"probe/last_preact_p{p}"] = q[i]
    host = {key: values.tolist() for key, values in columns.items()}
    return [{key: values[i] for key, values in host.items()} for i in range(len(members))]
