"""Evaluation outside the training loop: error in %, Monte-Carlo dropout, activation probes."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from reglab.models.dropout import set_stochastic

ACTIVATION_TYPES = (nn.ReLU, nn.Sigmoid, nn.Tanh)


def error_percent(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Classification error in percent (the papers plot error, not accuracy)."""
    return (logits.argmax(dim=1) != labels).float().mean() * 100.0


@torch.no_grad()
def mc_log_probs(model: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    """log of the mean softmax over ``samples`` stochastic passes (Srivastava §7.5)."""
    set_stochastic(model, True)
    try:
        probs = torch.stack([F.softmax(model(x), dim=1) for _ in range(samples)]).mean(0)
    finally:
        set_stochastic(model, False)
    return probs.clamp_min(1e-12).log()


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
