"""Tests for reglab.report.illustrations: closed forms against numerical optimisers, the
sparsity claims of the lecture, and that the figures are written."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.optimize import brentq, minimize, minimize_scalar

from reglab.report import illustrations as ill

LAMS = [0.0, 0.1, 0.5, 1.0, 1.2, 1.49, 1.5, 2.0, 5.0, 50.0]


# --------------------------------------------------------------------------- penalty toy


def _numeric_minimiser(lam: float, kind: str) -> float:
    res = minimize_scalar(
        lambda w: float(ill.penalty_energy(w, lam, kind)),
        bounds=(ill.W_MIN, 3.0),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(res.x)


@pytest.mark.parametrize("kind", ["l1", "l2"])
@pytest.mark.parametrize("lam", LAMS)
def test_minimiser_matches_bounded_scalar_search(lam: float, kind: str) -> None:
    closed = ill.penalty_minimiser(lam, kind)
    assert closed == pytest.approx(_numeric_minimiser(lam, kind), abs=1e-6)
    # and it is no worse than the numerical one (the bounded search is only approximate)
    numeric_e = ill.penalty_energy(_numeric_minimiser(lam, kind), lam, kind)
    assert ill.penalty_energy(closed, lam, kind) <= numeric_e + 1e-12


def test_minimiser_is_one_without_penalty() -> None:
    assert ill.penalty_minimiser(0.0, "l1") == pytest.approx(1.0)
    assert ill.penalty_minimiser(0.0, "l2") == pytest.approx(1.0)


@pytest.mark.parametrize("lam", [1.5, 1.5000001, 2.0, 10.0, 1e6])
def test_l1_minimiser_is_exactly_zero_above_threshold(lam: float) -> None:
    """Threshold 3/2 = |d/dw [(w-1)^2 + (w-1)^3/6]| at w = 0 (subgradient condition)."""
    assert ill.L1_ZERO_THRESHOLD == 1.5
    assert ill.penalty_minimiser(lam, "l1") == 0.0


@pytest.mark.parametrize("lam", [0.0, 1.0, 1.4, 1.499])
def test_l1_minimiser_is_positive_below_threshold(lam: float) -> None:
    assert ill.penalty_minimiser(lam, "l1") > 0.0


def test_l1_threshold_is_where_zero_becomes_optimal_numerically() -> None:
    """The subgradient condition, checked on E itself rather than on the closed form."""
    h = 1e-6
    for lam, zero_optimal in ((1.45, False), (1.55, True)):
        e0 = ill.penalty_energy(0.0, lam, "l1")
        right = ill.penalty_energy(h, lam, "l1")
        assert bool(right >= e0) == zero_optimal, lam


@pytest.mark.parametrize("lam", [1.5, 10.0, 1e3, 1e8])
def test_l2_minimiser_stays_positive(lam: float) -> None:
    w = ill.penalty_minimiser(lam, "l2")
    assert w > 0.0
    assert w == pytest.approx(3.0 / (4.0 * lam), rel=1.0 / lam)  # decays like 3/(4 lam)


def test_minimisers_decrease_with_lambda() -> None:
    for kind in ("l1", "l2"):
        ws = [ill.penalty_minimiser(lam, kind) for lam in np.linspace(0, 4, 41)]
        assert all(a >= b for a, b in itertools.pairwise(ws)), kind


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_minimiser_rejects_bad_lambda(bad: float) -> None:
    with pytest.raises(ValueError):
        ill.penalty_minimiser(bad, "l1")


def test_minimiser_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        ill.penalty_minimiser(1.0, "l3")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- projections


def test_l1_projection_matches_known_values_and_constrained_qp() -> None:
    v = np.array([2.0, 0.5, -0.2])
    p = ill.project_l1_ball(v, 1.0)
    np.testing.assert_allclose(p, [1.0, 0.0, 0.0])  # theta = 1 kills the two small ones
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.normal(scale=2.0, size=4)
        p = ill.project_l1_ball(v, 1.0)
        assert np.abs(p).sum() == pytest.approx(1.0)
        ref = _slsqp_projection(v, 1.0)
        np.testing.assert_allclose(p, ref, atol=1e-5)


def _slsqp_projection(v: np.ndarray, radius: float) -> np.ndarray:
    """Projection via the split w = p - n, p, n >= 0: a smooth QP SLSQP can solve."""
    d = v.size
    res = minimize(
        lambda z: 0.5 * np.sum((z[:d] - z[d:] - v) ** 2),
        x0=np.zeros(2 * d),
        bounds=[(0, None)] * (2 * d),
        constraints=[{"type": "ineq", "fun": lambda z: radius - z.sum()}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x[:d] - res.x[d:]


def test_projections_leave_inner_points_alone() -> None:
    v = np.array([0.2, -0.3])
    np.testing.assert_array_equal(ill.project_l1_ball(v, 1.0), v)
    np.testing.assert_array_equal(ill.project_l2_ball(v, 1.0), v)


# --------------------------------------------------------------------------- constrained optimum


def _edge_search_l1(A: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Brute force over the diamond's four edges (valid when b lies outside the diamond)."""
    corners = [np.array(c, dtype=float) * r for c in ((1, 0), (0, 1), (-1, 0), (0, -1))]
    best, best_cost = None, np.inf
    for c0, c1 in zip(corners, corners[1:] + corners[:1], strict=True):
        res = minimize_scalar(
            lambda t, c0=c0, c1=c1: float(ill.quadratic_cost(c0 + t * (c1 - c0), A, b)),
            bounds=(0.0, 1.0),
            method="bounded",
            options={"xatol": 1e-12},
        )
        w = c0 + res.x * (c1 - c0)
        if res.fun < best_cost:
            best, best_cost = w, res.fun
    return best


def _secular_l2(A: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Exact reference from the KKT conditions: w = (A + mu I)^-1 A b with ||w|| = r,
    mu >= 0 found by root-finding on the (monotone) secular equation."""

    def w_of(mu: float) -> np.ndarray:
        return np.linalg.solve(A + mu * np.eye(len(b)), A @ b)

    mu = brentq(lambda m: np.linalg.norm(w_of(m)) - r, 0.0, 1e6, xtol=1e-14)
    return w_of(mu)


@pytest.mark.parametrize("index", range(len(ill.EXAMPLE_COSTS)))
def test_l1_optimum_has_exact_zero_and_matches_edge_search(index: int) -> None:
    A, b = ill.EXAMPLE_COSTS[index]
    r = ill.EXAMPLE_RADIUS
    w = ill.constrained_optimum(A, b, r, "l1")
    assert np.min(np.abs(w)) <= 1e-9, w  # a corner: one coordinate is 0
    assert np.abs(w).sum() == pytest.approx(r)
    ref = _edge_search_l1(A, b, r)
    np.testing.assert_allclose(w, ref, atol=1e-6)


@pytest.mark.parametrize("index", range(len(ill.EXAMPLE_COSTS)))
def test_l2_optimum_has_no_zero_and_matches_scipy(index: int) -> None:
    A, b = ill.EXAMPLE_COSTS[index]
    r = ill.EXAMPLE_RADIUS
    w = ill.constrained_optimum(A, b, r, "l2")
    assert np.min(np.abs(w)) > 0.1, w
    assert np.linalg.norm(w) == pytest.approx(r)
    np.testing.assert_allclose(w, _secular_l2(A, b, r), atol=1e-9)


def test_l1_optimum_can_lie_on_an_edge() -> None:
    """Corners are typical, not guaranteed: this cost touches the diamond mid-edge, so the
    solver must not simply snap to corners."""
    A = ill.rotated_quadratic(-60.0, (1.0, 5.0))
    b = np.array([0.8, 1.9])
    w = ill.constrained_optimum(A, b, 1.0, "l1")
    assert np.min(np.abs(w)) > 0.1
    np.testing.assert_allclose(w, _edge_search_l1(A, b, 1.0), atol=1e-6)


def test_feasible_centre_is_its_own_optimum() -> None:
    A, b = np.diag([1.0, 3.0]), np.array([0.1, -0.2])
    for kind in ("l1", "l2"):
        np.testing.assert_allclose(ill.constrained_optimum(A, b, 1.0, kind), b)


def test_constrained_optimum_rejects_indefinite_cost() -> None:
    with pytest.raises(ValueError, match="positive definite"):
        ill.constrained_optimum(np.diag([1.0, -1.0]), np.zeros(2), 1.0, "l2")


# --------------------------------------------------------------------------- figures


def _assert_real_png(path: Path, min_bytes: int = 20_000) -> None:
    assert path.is_file() and path.stat().st_size > min_bytes
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width > 800 and img.height > 300
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # not a blank canvas


def test_penalty_toy_png(tmp_path: Path) -> None:
    out = ill.plot_penalty_toy(tmp_path / "figs")
    assert out.path == tmp_path / "figs" / "penalty_toy.png"
    _assert_real_png(out.path)
    assert "w ≥ -1" in out.caption and "1.5" in out.caption


def test_constraint_sets_png(tmp_path: Path) -> None:
    path, caption = ill.plot_constraint_sets(tmp_path)
    _assert_real_png(path)
    assert "corner" in caption
