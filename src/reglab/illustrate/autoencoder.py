"""Dropout autoencoders on MNIST: learned features (Srivastava Fig 7) and sparsity (Fig 8).

Trains two autoencoders with one hidden layer of 256 ReLU units, without and with dropout
on the hidden units (retention p = 0.5, ``reglab.models.RetentionDropout`` through
``reglab.models.MLP``), from the same initial weights and batches, in Lightning's Trainer.
An autoencoder is not a classifier (its target is its input, its loss the pixels'
cross-entropy), so it is a small LightningModule of its own, not reglab's
``StackedClassifier``; its dropout draws the same counter-based masks. Writes

* ``autoencoder_features.png``: each net's first-layer weights as a grid of 28x28 tiles
  (Srivastava et al. 2014 Fig 7);
* ``autoencoder_sparsity.png``: histograms of the hidden activations and of the per-unit
  mean activations on a test batch, with the mean activation and the published ≈2.0
  (no dropout) / ≈0.7 (dropout) from ``published.yaml`` (Fig 8);
* ``autoencoder_features.json`` / ``autoencoder_sparsity.json``: captions and numbers.

    python -m reglab.illustrate.autoencoder [--out reports/illustrations] [--steps 3000]

About a minute on one CPU core with the defaults.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch.utils.data import DataLoader, TensorDataset

from reglab import published as pub
from reglab.data import TensorDataModule
from reglab.figures import DPI
from reglab.illustrate.common import fit, load_mnist, parse_settings, write_caption
from reglab.models import MLP, DropoutSpec

HIDDEN = 256  # Srivastava et al. 2014 Figs 7-8: one hidden layer of 256 ReLU units
P_RETAIN = 0.5


@dataclass
class Settings:
    steps: int = 3000
    lr: float = 1e-3
    batch_size: int = 100
    train_size: int = 20000
    probe_size: int = 1000  # test images for the activation histograms
    seed: int = 0


@dataclass
class Trained:
    """One trained autoencoder and its hidden activations on the probe batch."""

    label: str
    p: float
    weights: np.ndarray  # (256, 784) first-layer weights
    activations: np.ndarray  # (probe images, 256), eval mode
    loss: float  # reconstruction loss on the probe batch (binary cross-entropy per pixel)


def autoencoder(p: float, seed: int) -> MLP:
    """784 → 256 ReLU → [dropout p] → 784 logits: reglab's MLP with 784 'classes'."""
    torch.manual_seed(seed)
    return MLP((1, 28, 28), 28 * 28, hidden=[HIDDEN], dropout=DropoutSpec(p_hidden=p), seed=seed)


class Autoencoder(pl.LightningModule):
    """The net, Adam, and the reconstruction loss: binary cross-entropy of the sigmoid
    outputs against the input pixels (on [0, 1]); ``to_input``: raw pixels → input."""

    def __init__(self, p: float, seed: int, lr: float, to_input) -> None:
        super().__init__()
        self.net, self.lr, self.to_input = autoencoder(p, seed), lr, to_input

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = self.to_input(batch[0])
        return F.binary_cross_entropy_with_logits(self.net(x), x.flatten(1))

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.lr)


def hidden_activations(model: MLP, x: torch.Tensor) -> torch.Tensor:
    """The ReLU outputs (before dropout) in eval mode: flatten → fc1 → act1."""
    model.eval()
    with torch.no_grad():
        return model.act1(model.fc1(model.flatten(x)))


def batches(data: TensorDataModule, cfg: Settings) -> DataLoader:
    """Training images in batches, reshuffled each epoch from ``cfg.seed`` (an epoch's
    last, short batch left out): the same batches for every net."""
    images = TensorDataset(data.splits["train"].images)
    order = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(images, cfg.batch_size, shuffle=True, drop_last=True, generator=order)


def train(p: float, label: str, data: TensorDataModule, cfg: Settings) -> Trained:
    module = Autoencoder(p, cfg.seed, cfg.lr, data.to_input)
    fit(module, cfg.steps, train_dataloaders=batches(data, cfg))
    model = module.net
    probe = data.to_input(data.splits["test"].images[: cfg.probe_size])
    acts = hidden_activations(model, probe)
    with torch.no_grad():
        probe_loss = float(F.binary_cross_entropy_with_logits(model(probe), probe.flatten(1)))
    weights = model.fc1.weight.detach().numpy().copy()
    return Trained(label, p, weights, acts.numpy(), probe_loss)


# --------------------------------------------------------------------------- figures


def tile_grid(weights: np.ndarray, side: int = 28, pad: int = 1) -> np.ndarray:
    """Rows of ``weights`` as a square grid of side x side tiles, each scaled to [-1, 1]."""
    n = weights.shape[0]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (side + pad) + pad, cols * (side + pad) + pad), np.nan)
    for k, w in enumerate(weights):
        r, c = divmod(k, cols)
        scale = np.abs(w).max() or 1.0
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        grid[top : top + side, left : left + side] = (w / scale).reshape(side, side)
    return grid


def shown_units(net: Trained, count: int = 100) -> np.ndarray:
    """The first ``count`` units active on the probe batch (dead units keep their init)."""
    return np.flatnonzero(net.activations.max(axis=0) > 0)[:count]


def plot_features(nets: list[Trained], count: int = 100) -> Figure:
    fig = Figure(figsize=(6.2 * len(nets), 6.6), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(nets)))
    for i, (ax, net) in enumerate(zip(axes, nets, strict=True)):
        grid = tile_grid(net.weights[shown_units(net, count)])
        ax.imshow(grid, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(f"({'abcd'[i]}) {net.label}")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_sparsity(nets: list[Trained], published: dict[float, float]) -> Figure:
    fig = Figure(figsize=(12.0, 4.0 * len(nets)), dpi=100, layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(nets), 2))
    top = max(float(n.activations.max()) for n in nets)
    mean_top = max(float(n.activations.mean(axis=0).max()) for n in nets)
    for row, net in zip(axes, nets, strict=True):
        color = "tab:blue" if net.p < 1 else "tab:red"
        mean = float(net.activations.mean())
        ref = published.get(net.p)
        ref_text = f"; published ≈ {ref:g}" if ref is not None else ""
        row[0].hist(net.activations.mean(axis=0), bins=40, range=(0, mean_top), color=color)
        row[0].set_title(f"{net.label}: histogram of mean activations")
        row[0].set_xlabel("mean activation of a hidden unit over the test batch")
        row[0].set_ylabel("number of units")
        row[1].hist(net.activations.ravel(), bins=60, range=(0, top), color=color, log=True)
        row[1].set_title(f"{net.label}: histogram of activations")
        row[1].set_xlabel("activation")
        row[1].set_ylabel("count (log scale)")
        for ax in row:
            ax.axvline(mean, color="black", ls="--", lw=1)
            ax.text(
                0.97,
                0.92,
                f"mean activation = {mean:.2f}{ref_text}",
                ha="right",
                va="top",
                transform=ax.transAxes,
                fontsize=9,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"},
            )
            ax.grid(alpha=0.3)
    return fig


def published_means() -> dict[float, float]:
    """Srivastava et al. Figs 7-8 mean hidden activation, keyed by retention p."""
    values = pub.values("autoencoder").set_index("name")["value"]
    return {
        1.0: float(values["mean_activation_no_dropout"]),
        P_RETAIN: float(values["mean_activation_dropout"]),
    }


def numbers(nets: list[Trained], cfg: Settings) -> dict:
    ref = published_means()
    return {
        "settings": vars(cfg) | {"hidden": HIDDEN, "p_retain": P_RETAIN},
        **{
            net.label: {
                "mean activation": float(net.activations.mean()),
                "published mean activation (about)": ref.get(net.p),
                "fraction of activations exactly 0": float((net.activations == 0).mean()),
                "units never active on the batch": int((net.activations.max(axis=0) == 0).sum()),
                "reconstruction BCE per pixel (test batch)": net.loss,
            }
            for net in nets
        },
    }


def run(out: Path, cfg: Settings, root: str | None = None) -> dict:
    """Train both nets, write the two figures and their JSON; return the numbers."""
    data = load_mnist(cfg.train_size, cfg.seed, root, normalize="unit")  # the BCE target
    nets = [
        train(1.0, "without dropout", data, cfg),
        train(P_RETAIN, f"dropout p = {P_RETAIN:g}", data, cfg),
    ]
    result = numbers(nets, cfg)
    out.mkdir(parents=True, exist_ok=True)
    plot_features(nets).savefig(out / "autoencoder_features.png", format="png", dpi=DPI)
    plot_sparsity(nets, published_means()).savefig(
        out / "autoencoder_sparsity.png", format="png", dpi=DPI
    )
    setting = (
        f"autoencoder 784-{HIDDEN}-784, ReLU hidden units, sigmoid output and "
        f"cross-entropy loss, Adam, {cfg.steps} steps of {cfg.batch_size} on "
        f"{cfg.train_size} MNIST images, same init and batches for both nets"
    )
    no_drop, drop = (result[n.label] for n in nets)
    captions = {
        "autoencoder_features": (
            f"Features learned (Srivastava et al. 2014 Fig 7): the first-layer weights of an "
            f"{setting}: one 28x28 tile per hidden unit, for the first 100 units active on the "
            "test batch (each tile scaled to its own range; dead units are left out). "
            "(a) without dropout, (b) with dropout on the hidden units (p = 0.5)."
        ),
        "autoencoder_sparsity": (
            f"Dropout induces sparse activations (Srivastava et al. 2014 Fig 8): histograms of "
            f"the per-unit mean activation and of all hidden activations on {cfg.probe_size} "
            f"test images ({setting}). Mean activation {no_drop['mean activation']:.2f} "
            f"without dropout (published ≈ {published_means()[1.0]:g}) and "
            f"{drop['mean activation']:.2f} with dropout (published ≈ "
            f"{published_means()[P_RETAIN]:g}; Srivastava Figs 7-8, quoted)."
        ),
    }
    for stem, caption in captions.items():
        write_caption(out, stem, caption, result)
    return result


def main(argv: list[str] | None = None) -> int:
    out, cfg = parse_settings(__doc__, Settings(), ("steps", "train_size", "seed"), argv)
    print(json.dumps(run(out, cfg), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
