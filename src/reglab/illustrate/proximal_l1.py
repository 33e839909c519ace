"""Proximal vs subgradient ℓ1 on a real model: exact zeros and weights that stop at zero.

Trains one MLP on an MNIST subset twice from the same initial weights and batches, with
plain SGD and the same λ, as ``reglab-train`` trains a run: its composed config
(``regularizer=l1`` / ``regularizer=l1_proximal``) → ``reglab.classifier.StackedClassifier``
(a stack of one) in Lightning's Trainer, a callback recording every step. Once with
``reglab.regularizers.L1`` (λ‖w‖₁ in the loss, so SGD takes the subgradient step
λη·sign(w), which overshoots zero and makes the weight zig-zag across it) and once with
``reglab.regularizers.L1Proximal`` (the soft-threshold step after each update: a weight
that would cross zero stops exactly on it). Writes ``proximal_l1.png`` (fraction of
exactly-zero weights over training, a few weight trajectories, and a zoom near zero) and
``proximal_l1.json`` (its numbers).

    python -m reglab.illustrate.proximal_l1 [--out reports/illustrations]

About 10-20 s on one CPU core with the defaults.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure

from reglab.classifier import StackedClassifier
from reglab.data.stack import StackDataModule
from reglab.figures import DPI
from reglab.illustrate.common import data_root, fit, parse_settings, quiet, write_caption
from reglab.regularizers import zero_fraction

STEM = "proximal_l1"
#: The two runs: their ``regularizer`` config (conf/regularizer/) and their name.
RUNS = (("l1", "subgradient"), ("l1_proximal", "proximal"))


@dataclass
class Settings:
    steps: int = 1500
    lr: float = 0.05
    lam: float = 2e-3
    hidden: int = 256
    train_size: int = 5000
    batch_size: int = 100
    tracked: int = 4000  # first-layer weights whose trajectories are recorded
    seed: int = 0


@dataclass
class Trace:
    """One training run: zero fraction per step and the tracked weights' trajectories."""

    name: str
    zero_fraction: np.ndarray  # (steps + 1,)
    weights: np.ndarray  # (steps + 1, tracked)
    test_error: float


def run_config(regularizer: str, cfg: Settings, root: str | None = None):
    """The run's config, as ``reglab-train regularizer=<regularizer> ...`` composes it: an
    MLP 784-hidden-10, MNIST without validation hold-out, plain SGD (no momentum, so the ℓ1
    subgradient step is exactly λη·sign(w))."""
    from reglab.resolvers import compose

    overrides = [
        "data=mnist", "data.download=false", "data.val_size=0", "data.normalize=standardize",
        f"data.train_size={cfg.train_size}", f"data.batch_size={cfg.batch_size}",
        "model=mlp", f"model.hidden=[{cfg.hidden}]", "dropout=none",
        "optimizer=sgd", f"optimizer.lr={cfg.lr!r}", "optimizer.momentum=0.0",
        "scheduler=none", f"regularizer={regularizer}", f"regularizer.lam={cfg.lam!r}",
        f"seed={cfg.seed}", "~logger",  # no run directory: nothing is logged
    ]  # fmt: skip
    composed = compose(overrides)
    composed.data.root = data_root(root)
    return composed


class Recorder(pl.Callback):
    """After every step (and before the first): the fraction of the regularized weights
    that are exactly 0, and the ``tracked`` entries of the first layer's weight matrix."""

    def __init__(self, tracked: torch.Tensor, inputs: int) -> None:
        self.rows, self.cols = tracked // inputs, tracked % inputs
        self.zeros: list[float] = []
        self.weights: list[torch.Tensor] = []

    def record(self, module) -> None:
        with torch.no_grad():
            self.zeros.append(float(zero_fraction(module.reg_params())[0]))
            fc1 = module.net.body.fc1.weight[0]  # member 0, (out, in) as the solo model's
            self.weights.append(fc1[self.rows, self.cols].clone())

    def on_train_start(self, trainer, module) -> None:
        self.record(module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.record(module)


def train(name: str, config, steps: int, tracked: torch.Tensor, data=None) -> Trace:
    """One run of ``config`` for ``steps`` steps in Lightning's Trainer, its test error
    from the Trainer's test loop; ``data``: its (unfitted) ``StackDataModule``, if loaded."""
    module = StackedClassifier.from_configs([config])
    data = data or StackDataModule.from_configs([config])
    recorder = Recorder(tracked, module.net.body.fc1.in_features)
    trainer = fit(module, steps, [recorder], datamodule=data)
    with quiet():
        (tested,) = trainer.test(module, datamodule=data, verbose=False)
    weights = torch.stack(recorder.weights).numpy()
    return Trace(name, np.array(recorder.zeros), weights, float(tested["test/error"]))


def sign_changes(trajectory: np.ndarray) -> np.ndarray:
    """Times each weight (column) changes sign, counting a stop at 0 as no change."""
    signs = np.sign(trajectory)
    prev = signs[:-1]
    return np.sum((prev * signs[1:]) < 0, axis=0)


def pick_examples(sub: Trace, prox: Trace, k: int = 4) -> list[int]:
    """Tracked weights that stop at 0 under the proximal step and cross 0 under the sign one.

    Among those starting away from zero, picks weights reaching zero at different times so
    the panel shows a spread; falls back to any weight the proximal run set to zero.
    """
    at_zero = prox.weights == 0.0
    first = np.argmax(at_zero, axis=0)
    stays = at_zero[-1] & (at_zero.shape[0] - first == at_zero.sum(axis=0))
    crossings = sign_changes(sub.weights)
    start = np.abs(prox.weights[0])
    good = np.flatnonzero(stays & (crossings >= 2))
    good = good[start[good] >= np.median(start[good])] if len(good) >= 2 * k else good
    if len(good) < k:
        good = np.flatnonzero(at_zero[-1])
    if len(good) == 0:
        return [int(j) for j in np.argsort(-start)[:k]]
    ranked = good[np.argsort(first[good], kind="stable")]
    picks = np.linspace(0, len(ranked) - 1, min(k, len(ranked))).round().astype(int)
    return [int(ranked[i]) for i in picks]


def first_zero(trace: Trace, j: int) -> int:
    """First step at which tracked weight ``j`` is exactly 0 (last step if never)."""
    hits = np.flatnonzero(trace.weights[:, j] == 0.0)
    return int(hits[0]) if len(hits) else len(trace.weights) - 1


def plot(sub: Trace, prox: Trace, examples: list[int], cfg: Settings) -> Figure:
    fig = Figure(figsize=(15.0, 4.4), dpi=100, layout="constrained")
    ax_zero, ax_traj, ax_zoom = fig.subplots(1, 3)
    steps = np.arange(len(sub.zero_fraction))
    ax_zero.plot(steps, sub.zero_fraction, color="tab:red", label="subgradient l1 (L1)")
    ax_zero.plot(steps, prox.zero_fraction, color="tab:green", label="proximal l1 (L1Proximal)")
    ax_zero.set_title("(a) fraction of weights exactly 0")
    ax_zero.set_xlabel("training step")
    ax_zero.set_ylabel("fraction of weights == 0")
    ax_zero.set_ylim(-0.02, 1.02)
    ax_zero.legend(fontsize=8)
    colors = ["tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
    for i, j in enumerate(examples):
        c = colors[i % len(colors)]
        ax_traj.plot(
            steps,
            sub.weights[:, j],
            color=c,
            lw=0.9,
            ls="--",
            label="sign (subgradient) update" if i == 0 else None,
        )
        ax_traj.plot(
            steps, prox.weights[:, j], color=c, lw=1.8, label="proximal step" if i == 0 else None
        )
    ax_traj.set_title(f"(b) {len(examples)} first-layer weights (same init and batches)")
    j = examples[len(examples) // 2]
    hit = first_zero(prox, j)
    window = slice(max(0, hit - 25), min(len(steps), hit + 75))
    step_size = cfg.lr * cfg.lam
    ax_zoom.axhspan(-step_size, step_size, color="0.88", lw=0, label="±ηλ (one sign step)")
    crossed = int(sign_changes(sub.weights[window, j : j + 1])[0])
    ax_zoom.plot(
        steps[window],
        sub.weights[window, j],
        ".--",
        color="tab:red",
        lw=0.9,
        ms=3,
        label=f"sign update: crosses 0 {crossed} times",
    )
    ax_zoom.plot(
        steps[window],
        prox.weights[window, j],
        ".-",
        color="tab:green",
        lw=1.6,
        ms=3,
        label="proximal: stops at 0",
    )
    ax_zoom.set_ylim(-4 * step_size, 6 * step_size)
    ax_zoom.set_title("(c) one weight near 0, step by step")
    for ax in (ax_traj, ax_zoom):
        ax.axhline(0.0, color="0.3", lw=0.8)
        ax.set_xlabel("training step")
        ax.set_ylabel("weight value")
        ax.legend(fontsize=8)
    for ax in (ax_zero, ax_traj, ax_zoom):
        ax.grid(alpha=0.3)
    return fig


def numbers(sub: Trace, prox: Trace, examples: list[int], cfg: Settings) -> dict:
    return {
        "settings": vars(cfg),
        "subgradient l1": {
            "final zero fraction": float(sub.zero_fraction[-1]),
            "test error %": sub.test_error,
            "mean sign changes per tracked weight": float(sign_changes(sub.weights).mean()),
        },
        "proximal l1": {
            "final zero fraction": float(prox.zero_fraction[-1]),
            "test error %": prox.test_error,
            "mean sign changes per tracked weight": float(sign_changes(prox.weights).mean()),
        },
        "example sign changes (subgradient)": [int(sign_changes(sub.weights)[j]) for j in examples],
        "example sign changes (proximal)": [int(sign_changes(prox.weights)[j]) for j in examples],
    }


def run(out: Path, cfg: Settings, root: str | None = None) -> tuple[Path, dict]:
    """Train both, write ``<out>/proximal_l1.png`` and ``.json``; return the PNG and numbers."""
    configs = [run_config(regularizer, cfg, root) for regularizer, _ in RUNS]
    loaded = StackDataModule.from_configs(configs[:1])  # the same data for both: read once
    n_weights = cfg.hidden * int(np.prod(loaded.members[0].input_shape))  # fc1: (hidden, 784)
    gen = torch.Generator().manual_seed(cfg.seed)
    tracked = torch.randperm(n_weights, generator=gen)[: cfg.tracked]
    sub, prox = (
        train(name, config, cfg.steps, tracked, StackDataModule(loaded.members, loaded.prepared))
        for config, (_, name) in zip(configs, RUNS, strict=True)
    )
    examples = pick_examples(sub, prox)
    result = numbers(sub, prox, examples, cfg)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{STEM}.png"
    plot(sub, prox, examples, cfg).savefig(png, format="png", dpi=DPI)
    caption = (
        f"Proximal vs subgradient l1 on an MLP 784-{cfg.hidden}-10 (MNIST, {cfg.train_size} "
        f"images, plain SGD η = {cfg.lr:g}, λ = {cfg.lam:g}, {cfg.steps} steps, same init and "
        "batches). (a) Fraction of weights exactly 0: "
        f"{result['subgradient l1']['final zero fraction']:.3f} with the sign (subgradient) "
        f"update, {result['proximal l1']['final zero fraction']:.3f} with the proximal step. "
        "(b, c) First-layer weights: under the sign update (dashed) they overshoot 0 by up "
        "to ηλ and keep crossing it; under the proximal step (solid) they stop exactly at 0."
    )
    write_caption(out, STEM, caption, result)
    return png, result


def main(argv: list[str] | None = None) -> int:
    options = ("steps", "lam", "lr", "train_size", "seed")
    out, cfg = parse_settings(__doc__, Settings(), options, argv)
    png, result = run(out, cfg)
    print(json.dumps(result, indent=2))
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
