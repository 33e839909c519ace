"""The lecture's two illustrations of why l1 gives sparse weights and l2 does not.

1. Penalty toy (one weight): E(w) = (w-1)^2 + (1/6)(w-1)^3 plus lam|w| (l1) or lam w^2 (l2).
   The minimiser under l1 reaches exactly 0 at a finite lam; under l2 it only tends to 0.
2. Constrained view (two weights): minimise a quadratic cost over the l1 diamond or the l2
   disc. The diamond's corners lie on the axes, so the l1 optimum often has a coordinate
   exactly 0; the disc has no corners, so the l2 optimum generically has none.

Everything is pure numpy + matplotlib (Agg via ``matplotlib.figure.Figure``, so importing
this module never touches pyplot's global backend).

Domain of the toy. The cubic term makes E unbounded below as w -> -inf (E has a local
maximum at w = -3), so a *global* minimiser over the real line does not exist. We study the
problem on the interval w >= -1, where E'' = 2 + (w-1) + (penalty) = w + 1 (+ 2 lam) >= 0:
there E is convex, the minimiser is unique, and it is the local minimum near w = 1 that the
lecture's picture shows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Polygon

from reglab.figures import DPI

PenaltyKind = Literal["l1", "l2"]

#: Lower end of the toy's domain (see the module docstring): E is convex on [W_MIN, inf).
W_MIN = -1.0

#: l1 threshold: w* = 0 exactly iff lam >= |dE0/dw (0)| = |2(0-1) + (0-1)^2/2| = 3/2.
L1_ZERO_THRESHOLD = 1.5


class Illustration(NamedTuple):
    """A written PNG and its caption; unpacks like the ``(path, caption)`` pairs of html.py."""

    path: Path
    caption: str


# ============================================================================ penalty toy


def penalty_energy(w: np.ndarray | float, lam: float, kind: PenaltyKind) -> np.ndarray:
    """E(w) = (w-1)^2 + (w-1)^3/6 + lam * (|w| for l1, w^2 for l2)."""
    w = np.asarray(w, dtype=float)
    u = w - 1.0
    return u**2 + u**3 / 6.0 + lam * _penalty(w, kind)


def _penalty(w: np.ndarray, kind: PenaltyKind) -> np.ndarray:
    if kind == "l1":
        return np.abs(w)
    if kind == "l2":
        return w**2
    raise ValueError(f"kind must be 'l1' or 'l2', not {kind!r}")


def penalty_minimiser(lam: float, kind: PenaltyKind) -> float:
    """Unique minimiser of :func:`penalty_energy` on w >= -1, in closed form.

    With u = w - 1 the smooth part has derivative 2u + u^2/2.

    * l1, w > 0: 2u + u^2/2 + lam = 0 gives w = -1 + sqrt(4 - 2 lam) = (3 - 2 lam) /
      (1 + sqrt(4 - 2 lam)), positive iff lam < 3/2. For lam >= 3/2 the subgradient
      condition at 0 holds (|E0'(0)| = 3/2 <= lam), so w* = 0 exactly. No minimiser is
      negative: for -1 <= w < 0, E0'(w) <= -3/2 so E'(w) = E0'(w) - lam < 0.
    * l2: 2u + u^2/2 + 2 lam (u + 1) = 0 gives w = 3 / (1 + 2 lam + 2 sqrt(lam^2+lam+1)),
      written without cancellation; it is > 0 for every lam and decays like 3 / (4 lam).
    """
    if not (lam >= 0.0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a finite number >= 0, not {lam!r}")
    if kind == "l1":
        if lam >= L1_ZERO_THRESHOLD:
            return 0.0
        return (3.0 - 2.0 * lam) / (1.0 + math.sqrt(4.0 - 2.0 * lam))
    if kind == "l2":
        return 3.0 / (1.0 + 2.0 * lam + 2.0 * math.sqrt(lam * lam + lam + 1.0))
    raise ValueError(f"kind must be 'l1' or 'l2', not {kind!r}")


def plot_penalty_toy(
    out_dir: str | Path, lams: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 3.0)
) -> Illustration:
    """Three panels: E under l1 for several lam, E under l2, and w*(lam) for both."""
    fig = Figure(figsize=(13.5, 4.2), dpi=100, layout="constrained")
    ax_l1, ax_l2, ax_path = fig.subplots(1, 3)
    for ax, kind in ((ax_l1, "l1"), (ax_l2, "l2")):
        _draw_energy_curves(ax, kind, lams)
    _draw_minimiser_path(ax_path)
    path = _save(fig, out_dir, "penalty_toy.png")
    caption = (
        "Penalty toy E(w) = (w-1)² + (w-1)³/6 + λ·pen(w) on w ≥ -1 (the cubic makes E "
        "unbounded below as w → -∞; on w ≥ -1 it is convex). Left, middle: E for several λ, "
        "minimiser marked. Right: the minimiser against λ — with l1 it is exactly 0 for "
        f"λ ≥ {L1_ZERO_THRESHOLD:g}; with l2 it only approaches 0 (≈ 3/(4λ))."
    )
    return Illustration(path, caption)


def _draw_energy_curves(ax, kind: PenaltyKind, lams: tuple[float, ...]) -> None:
    w = np.linspace(W_MIN, 2.2, 400)
    colors = _colors(len(lams))
    for lam, color in zip(lams, colors, strict=True):
        ax.plot(w, penalty_energy(w, lam, kind), color=color, label=f"λ = {lam:g}")
        w_star = penalty_minimiser(lam, kind)
        ax.plot([w_star], [penalty_energy(w_star, lam, kind)], "o", color=color, ms=6)
    pen = "λ|w|" if kind == "l1" else "λw²"
    ax.set_title(f"E(w) with {kind} penalty {pen}")
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("w")
    ax.set_ylabel("E(w)")
    ax.set_ylim(-0.5, 6.0)
    ax.legend(fontsize=8, loc="upper center")


def _draw_minimiser_path(ax) -> None:
    lam = np.linspace(0.0, 4.0, 401)
    for kind, color in (("l1", "tab:red"), ("l2", "tab:blue")):
        ax.plot(lam, [penalty_minimiser(v, kind) for v in lam], color=color, label=kind)
    ax.axvline(L1_ZERO_THRESHOLD, color="tab:red", lw=0.8, ls="--")
    ax.annotate(
        f"l1: w* = 0 exactly\nfor λ ≥ {L1_ZERO_THRESHOLD:g}",
        xy=(L1_ZERO_THRESHOLD, 0.0),
        xytext=(2.1, 0.45),
        arrowprops={"arrowstyle": "->", "color": "tab:red"},
        color="tab:red",
    )
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_title("minimiser w* against λ")
    ax.set_xlabel("λ")
    ax.set_ylabel("w*")
    ax.legend()


# ============================================================================ constrained view


def project_l1_ball(v: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection onto {w : ||w||_1 <= radius}, exact (Duchi et al. 2008, Fig. 1).

    Soft-thresholds |v| by the theta that makes the l1 norm equal the radius, so the
    coordinates below theta become exactly 0 — the source of l1's sparsity.
    """
    v = np.asarray(v, dtype=float)
    if radius <= 0:
        raise ValueError("radius must be > 0")
    if np.abs(v).sum() <= radius:
        return v.copy()
    mu = np.sort(np.abs(v))[::-1]
    cumsum = np.cumsum(mu)
    k = np.arange(1, v.size + 1)
    rho = np.nonzero(mu * k > cumsum - radius)[0][-1]
    theta = (cumsum[rho] - radius) / (rho + 1.0)
    return np.sign(v) * np.maximum(np.abs(v) - theta, 0.0) + 0.0  # + 0.0 drops -0.0


def project_l2_ball(v: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection onto {w : ||w||_2 <= radius}: rescale if outside."""
    v = np.asarray(v, dtype=float)
    if radius <= 0:
        raise ValueError("radius must be > 0")
    norm = float(np.linalg.norm(v))
    return v.copy() if norm <= radius else v * (radius / norm)


def quadratic_cost(w: np.ndarray, A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """0.5 (w-b)^T A (w-b), vectorised over leading axes of ``w`` (shape (..., d))."""
    d = np.asarray(w, dtype=float) - b
    return 0.5 * np.einsum("...i,ij,...j->...", d, A, d)


def constrained_optimum(
    A: np.ndarray,
    b: np.ndarray,
    radius: float,
    kind: PenaltyKind,
    tol: float = 1e-13,
    max_iter: int = 200_000,
) -> np.ndarray:
    """argmin 0.5 (w-b)^T A (w-b) subject to ||w||_p <= radius, p = 1 or 2.

    Projected gradient with step 1/L (L = largest eigenvalue of A): for a positive-definite A
    it converges linearly to the unique optimum, and every iterate is an exact projection,
    so zeros produced by the l1 projection are exact zeros, not small numbers.
    """
    A, b = _check_quadratic(A, b)
    if kind not in ("l1", "l2"):
        raise ValueError(f"kind must be 'l1' or 'l2', not {kind!r}")
    project = project_l1_ball if kind == "l1" else project_l2_ball
    step = 1.0 / float(np.linalg.eigvalsh(A).max())
    w = project(b, radius)
    for _ in range(max_iter):
        w_next = project(w - step * (A @ (w - b)), radius)
        if np.linalg.norm(w_next - w) <= tol:
            return w_next
        w = w_next
    raise RuntimeError(f"projected gradient did not converge in {max_iter} iterations")


def _check_quadratic(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or b.shape != (A.shape[0],):
        raise ValueError("A must be (d, d) and b must be (d,)")
    if not np.allclose(A, A.T) or np.linalg.eigvalsh(A).min() <= 0:
        raise ValueError("A must be symmetric positive definite")
    return A, b


def rotated_quadratic(angle_deg: float, scales: tuple[float, float]) -> np.ndarray:
    """A = R diag(scales) R^T: an elliptic cost whose axes are turned by ``angle_deg``."""
    t = math.radians(angle_deg)
    R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return R @ np.diag(scales) @ R.T


#: The three costs drawn (A, b): unconstrained optima outside the unit balls. For each the
#: l1 optimum is a corner of the diamond, the l2 optimum has both coordinates non-zero.
#: (Corners are typical, not guaranteed: a cost whose centre lies towards the diagonal can
#: touch the diamond on an edge.)
EXAMPLE_COSTS: tuple[tuple[np.ndarray, np.ndarray], ...] = (
    (np.eye(2), np.array([2.0, 0.5])),
    (rotated_quadratic(-30.0, (1.0, 4.0)), np.array([0.4, 1.9])),
    (rotated_quadratic(-20.0, (3.0, 1.0)), np.array([-1.6, -0.9])),
)
EXAMPLE_RADIUS = 1.0


def plot_constraint_sets(
    out_dir: str | Path,
    costs: tuple[tuple[np.ndarray, np.ndarray], ...] = EXAMPLE_COSTS,
    radius: float = EXAMPLE_RADIUS,
) -> Illustration:
    """One panel per cost: contours, the l1 diamond and l2 disc, and both optima."""
    fig = Figure(figsize=(4.4 * len(costs), 4.6), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(costs)))
    for i, (ax, (A, b)) in enumerate(zip(axes, costs, strict=True)):
        _draw_constrained_panel(ax, A, b, radius, title=f"cost {i + 1}")
    path = _save(fig, out_dir, "l1_vs_l2_constraints.png")
    caption = (
        "Minimising a quadratic cost ½(w-b)ᵀA(w-b) (grey contours, centre b marked +) inside "
        f"the l1 diamond or the l2 disc of radius {radius:g}. The dashed level set through "
        "each optimum touches its constraint set there: for these costs the l1 optimum "
        "(red square) sits on a corner, so one weight is exactly 0; the l2 optimum (blue "
        "dot) has no zero coordinate."
    )
    return Illustration(path, caption)


def _draw_constrained_panel(ax, A: np.ndarray, b: np.ndarray, radius: float, title: str) -> None:
    lim = 2.4
    grid = np.linspace(-lim, lim, 241)
    xx, yy = np.meshgrid(grid, grid)
    cost = quadratic_cost(np.stack([xx, yy], axis=-1), A, b)
    ax.contour(xx, yy, cost, levels=np.geomspace(0.05, 12.0, 12), colors="0.7", linewidths=0.7)
    diamond = [(radius, 0), (0, radius), (-radius, 0), (0, -radius)]
    ax.add_patch(Polygon(diamond, closed=True, fc=(0.84, 0.15, 0.16, 0.15), ec="tab:red", lw=1.5))
    ax.add_patch(Circle((0, 0), radius, fc=(0.12, 0.47, 0.71, 0.12), ec="tab:blue", lw=1.5))
    for kind, color, marker in (("l1", "tab:red", "s"), ("l2", "tab:blue", "o")):
        w = constrained_optimum(A, b, radius, kind)
        level = float(quadratic_cost(w, A, b))
        ax.contour(xx, yy, cost, levels=[level], colors=color, linewidths=1.2, linestyles="--")
        label = f"{kind} optimum ({w[0]:.2f}, {w[1]:.2f})"
        ax.plot(*w, marker, color=color, ms=8, mec="black", label=label, zorder=5)
    ax.plot(*b, "k+", ms=10, mew=2, label=f"b = ({b[0]:g}, {b[1]:g})")
    ax.axhline(0, color="0.4", lw=0.6)
    ax.axvline(0, color="0.4", lw=0.6)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("w₁")
    ax.set_ylabel("w₂")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best", framealpha=0.9)


# ============================================================================ helpers


def lecture_illustrations(out_dir: str | Path) -> list[Illustration]:
    """Both illustrations, in the order the lecture shows them."""
    return [plot_penalty_toy(out_dir), plot_constraint_sets(out_dir)]


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.85, n)]


def _save(fig: Figure, out_dir: str | Path, name: str) -> Path:
    """Write the PNG (creating ``out_dir``) and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.savefig(path, format="png", dpi=DPI)
    return path
