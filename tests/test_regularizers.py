"""Penalties, proximal ℓ1 and max-norm behave as their equations say."""

import pytest
import torch
from torch import nn

from reglab.models import MLP
from reglab.regularizers import (
    L1,
    L2,
    ElasticNet,
    L1Proximal,
    MaxNorm,
    Regularizer,
    as_stack,
    zero_fraction,
)


def test_l2_gradient_is_two_lambda_w():
    w = nn.Parameter(torch.randn(5, 3))
    L2(lam=0.3).penalty(as_stack([w])).sum().backward()
    torch.testing.assert_close(w.grad, 2 * 0.3 * w.detach())


def test_l1_gradient_is_lambda_sign_w():
    w = nn.Parameter(torch.tensor([[-2.0, 0.5, 3.0]]))
    L1(lam=0.1).penalty(as_stack([w])).sum().backward()
    torch.testing.assert_close(w.grad, torch.tensor([[-0.1, 0.1, 0.1]]))


def test_elastic_is_sum_of_l1_and_l2():
    w = nn.Parameter(torch.randn(4, 4))
    expected = 0.01 * w.abs().sum() + 0.2 * w.square().sum()
    penalty = ElasticNet(lam_l1=0.01, lam_l2=0.2).penalty(as_stack([w]))
    torch.testing.assert_close(penalty[0], expected)


def test_default_selection_is_weights_only():
    model = MLP((1, 4, 4), 3, hidden=[5], batchnorm=True)
    weights = Regularizer().parameters(model)
    assert [tuple(p.shape) for p in weights] == [(5, 16), (3, 5)]
    with_all = Regularizer(include_biases=True, include_batchnorm=True).parameters(model)
    assert len(with_all) == 6  # 2 weights, 2 biases, BN scale and shift


def _train_single_weight(reg, steps=200, lr=0.1, lam=0.5):
    """Minimise (w - 0.2)² + λ|w| with SGD: the ℓ1 optimum is exactly w = 0 for λ > 0.4."""
    w = nn.Parameter(torch.tensor([1.0, -1.0, 0.05]))
    opt = torch.optim.SGD([w], lr=lr)
    trace = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((w - torch.tensor([0.2, -0.2, 0.0])) ** 2).sum()
        penalty = reg.penalty(as_stack([w]))
        (loss if penalty is None else loss + penalty.sum()).backward()
        opt.step()
        reg.after_step(as_stack([w]), lr)
        trace.append(w.detach().clone())
    return torch.stack(trace)


def test_proximal_l1_lands_on_exact_zero_and_never_crosses_it():
    trace = _train_single_weight(L1Proximal(lam=0.5))
    assert torch.all(trace[-1] == 0.0)
    signs = torch.sign(trace)
    start = torch.tensor([1.0, -1.0, 1.0])
    assert torch.all((signs == 0) | (signs == start)), "a weight changed sign"
    # once at zero, it stays there
    first_zero = (trace == 0).float().argmax(dim=0)
    for j in range(3):
        assert torch.all(trace[first_zero[j] :, j] == 0)


def test_plain_l1_oscillates_around_zero_without_reaching_it():
    trace = _train_single_weight(L1(lam=0.5))
    tail = trace[-50:]
    assert torch.all(tail != 0.0)
    assert (torch.sign(tail[1:]) != torch.sign(tail[:-1])).any(), "expected sign flips"
    assert tail.abs().max() < 0.1  # it hovers near zero


def test_max_norm_holds_after_a_step():
    layer = nn.Linear(20, 7)
    with torch.no_grad():
        layer.weight.mul_(10)
    reg = MaxNorm(c=1.5)
    params = reg.parameters(layer)
    assert layer.weight.norm(dim=1).max() > 1.5
    reg.after_step(as_stack(params), lr=0.1)
    norms = layer.weight.norm(dim=1)
    assert torch.all(norms <= 1.5 + 1e-5)
    assert torch.allclose(norms, torch.full_like(norms, 1.5), atol=1e-4)


def test_max_norm_leaves_small_rows_alone():
    layer = nn.Linear(20, 7)
    before = layer.weight.detach().clone()
    MaxNorm(c=100.0).after_step(as_stack([layer.weight]), lr=0.1)
    torch.testing.assert_close(layer.weight.detach(), before)


@pytest.mark.parametrize("values, expected", [([0.0, 0.0, 1.0, 2.0], 0.5), ([1.0], 0.0)])
def test_zero_fraction(values, expected):
    assert float(zero_fraction(as_stack([nn.Parameter(torch.tensor(values))]))) == expected


def test_stacked_strengths_act_on_their_own_member():
    """A stack's regularizer holds one strength per member (Regularizer.stack)."""
    w = nn.Parameter(torch.randn(2, 5, 3))
    reg = Regularizer.stack([L2(lam=0.1), L2(lam=0.3)], torch.device("cpu"))
    reg.penalty([w]).sum().backward()
    torch.testing.assert_close(w.grad[0], 0.2 * w.detach()[0])
    torch.testing.assert_close(w.grad[1], 0.6 * w.detach()[1])
    prox = Regularizer.stack([L1Proximal(lam=0.0), L1Proximal(lam=100.0)], torch.device("cpu"))
    before = w.detach().clone()
    prox.after_step([w], torch.tensor([0.1, 0.1]))
    assert torch.equal(w.detach()[0], before[0]) and torch.all(w.detach()[1] == 0)
    norms = Regularizer.stack([MaxNorm(c=100.0), MaxNorm(c=0.5)], torch.device("cpu"))
    norms.after_step([w], 0.1)
    assert torch.equal(w.detach()[0], before[0])
