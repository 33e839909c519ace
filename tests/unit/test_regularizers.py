"""Penalties, proximal ℓ1 and max-norm behave as their equations say, for one model and for
each member of a stack (MemberRegularizer: the one-model hooks under torch.func.vmap)."""

import pytest
import torch
from torch import nn

from reglab.models import MLP
from reglab.models.stack import StackedNet
from reglab.regularizers import (
    L1,
    L2,
    ElasticNet,
    L1Proximal,
    MaxNorm,
    MemberRegularizer,
    Regularizer,
    strength_names,
    zero_fraction,
)

CPU = torch.device("cpu")


def test_l2_gradient_is_two_lambda_w():
    w = nn.Parameter(torch.randn(5, 3))
    L2(lam=0.3).penalty([w]).backward()
    torch.testing.assert_close(w.grad, 2 * 0.3 * w.detach())


def test_l1_gradient_is_lambda_sign_w():
    w = nn.Parameter(torch.tensor([[-2.0, 0.5, 3.0]]))
    L1(lam=0.1).penalty([w]).backward()
    torch.testing.assert_close(w.grad, torch.tensor([[-0.1, 0.1, 0.1]]))


def test_elastic_is_sum_of_l1_and_l2():
    w, v = nn.Parameter(torch.randn(4, 4)), nn.Parameter(torch.randn(3))
    expected = 0.01 * (w.abs().sum() + v.abs().sum()) + 0.2 * (w.square().sum() + v.square().sum())
    penalty = ElasticNet(lam_l1=0.01, lam_l2=0.2).penalty([w, v])
    assert penalty.dim() == 0
    torch.testing.assert_close(penalty, expected)


def test_default_selection_is_weights_only():
    model = MLP((1, 4, 4), 3, hidden=[5], batchnorm=True)
    weights = Regularizer().parameters(model)
    assert [tuple(p.shape) for p in weights] == [(5, 16), (3, 5)]
    with_all = Regularizer(include_biases=True, include_batchnorm=True).parameters(model)
    assert len(with_all) == 6  # 2 weights, 2 biases, BN scale and shift
    assert Regularizer().penalty(weights) is None


TARGET = torch.tensor([0.2, -0.2, 0.0])


def _train_single_weight(reg, steps=200, lr=0.1):
    """Minimise (w - t)² + λ|w| with SGD: the ℓ1 optimum is exactly w = 0 for λ > 0.4."""
    w = nn.Parameter(torch.tensor([1.0, -1.0, 0.05]))
    opt = torch.optim.SGD([w], lr=lr)
    trace = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((w - TARGET) ** 2).sum()
        penalty = reg.penalty([w])
        (loss if penalty is None else loss + penalty).backward()
        opt.step()
        reg.after_step([w], lr)
        trace.append(w.detach().clone())
    return torch.stack(trace)


def _assert_lands_on_zero_without_crossing(trace):
    assert torch.all(trace[-1] == 0.0)
    signs = torch.sign(trace)
    start = torch.tensor([1.0, -1.0, 1.0])
    assert torch.all((signs == 0) | (signs == start)), "a weight changed sign"
    first_zero = (trace == 0).float().argmax(dim=0)  # once at zero, it stays there
    for j in range(trace.shape[1]):
        assert torch.all(trace[first_zero[j] :, j] == 0)


def test_proximal_l1_lands_on_exact_zero_and_never_crosses_it():
    _assert_lands_on_zero_without_crossing(_train_single_weight(L1Proximal(lam=0.5)))


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
    reg.after_step(params, lr=0.1)
    norms = layer.weight.norm(dim=1)
    assert torch.all(norms <= 1.5 + 1e-5)
    assert torch.allclose(norms, torch.full_like(norms, 1.5), atol=1e-4)


def test_max_norm_leaves_small_rows_alone():
    layer = nn.Linear(20, 7)
    before = layer.weight.detach().clone()
    MaxNorm(c=100.0).after_step([layer.weight], lr=0.1)
    torch.testing.assert_close(layer.weight.detach(), before)


def test_zero_fraction_is_per_member():
    stacked = [torch.tensor([[0.0, 0.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]]), torch.zeros(2, 4)]
    assert zero_fraction(stacked).tolist() == [0.75, 0.5]


def test_strengths_are_the_numeric_constructor_arguments():
    cfg = {"_target_": "reglab.regularizers.ElasticNet", "lam_l1": 0.1, "lam_l2": 1,
           "include_biases": True, "include_batchnorm": False, "name": "x"}  # fmt: skip
    assert strength_names(cfg) == ["lam_l1", "lam_l2"]


# --- members of a stack -----------------------------------------------------------------


def _stack(k=3):
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(MLP((1, 4, 4), 3, hidden=[6], batchnorm=True))
    return models, StackedNet(models)


@pytest.mark.parametrize(
    ("kind", "strengths"),
    [
        (L2, [{"lam": 0.1}, {"lam": 0.3}, {"lam": 0.0}]),
        (L1, [{"lam": 0.5}, {"lam": 0.01}, {"lam": 2.0}]),
        (
            ElasticNet,
            [
                {"lam_l1": 0.1, "lam_l2": 0.2},
                {"lam_l1": 0.0, "lam_l2": 1.0},
                {"lam_l1": 0.3, "lam_l2": 0.0},
            ],
        ),
    ],
)
@pytest.mark.parametrize("selection", [{}, {"include_biases": True, "include_batchnorm": True}])
def test_member_penalties_equal_each_members_solo_penalty(kind, strengths, selection):
    """Each member's penalty (and its gradient) is its solo model's, with its strengths:
    never one member's penalty spread over all (issue 19)."""
    models, net = _stack()
    regs = [kind(**s, **selection) for s in strengths]
    member = MemberRegularizer(regs, list(strengths[0]), CPU)
    penalty = member.penalty(regs[0].parameters(net.body))
    assert penalty.shape == (3,)
    penalty.sum().backward()
    for k, (model, reg) in enumerate(zip(models, regs, strict=True)):
        solo = reg.penalty(reg.parameters(model))
        torch.testing.assert_close(penalty[k], solo)
        solo.backward()
        stacked = dict(net.body.named_parameters())
        for name, p in model.named_parameters():
            expected = p.grad if p.grad is not None else torch.zeros_like(p)
            got = stacked[name].grad
            torch.testing.assert_close(got[k] if got is not None else 0 * expected, expected)


def test_proximal_l1_per_member_with_its_own_lambda_and_lr():
    """Each member of a stack takes its own soft-threshold step (η_k λ_k): it lands on exact
    zeros without crossing, and its trace is its solo run's."""
    lams, lrs = [0.5, 0.8, 0.0], [0.1, 0.05, 0.1]
    member = MemberRegularizer([L1Proximal(lam=v) for v in lams], ["lam"], CPU)
    w = nn.Parameter(torch.tensor([[1.0, -1.0, 0.05]] * 3))
    lr = torch.tensor(lrs)
    trace = []
    for _ in range(400):
        w.grad = None
        ((w - TARGET) ** 2).sum().backward()
        with torch.no_grad():
            w -= lr[:, None] * w.grad
        member.after_step([w], lr)
        trace.append(w.detach().clone())
    trace = torch.stack(trace)  # (steps, K, 3)
    for k in (0, 1):
        _assert_lands_on_zero_without_crossing(trace[:, k])
        solo = _train_single_weight(L1Proximal(lam=lams[k]), steps=400, lr=lrs[k])
        torch.testing.assert_close(trace[:, k], solo)
    torch.testing.assert_close(trace[-1, 2], TARGET)  # λ = 0: plain least squares


def test_max_norm_per_member():
    member = MemberRegularizer([MaxNorm(c=100.0), MaxNorm(c=0.5)], ["c"], CPU)
    linear = torch.randn(2, 7, 20) * 3
    conv = torch.randn(2, 4, 3, 5, 5) * 3
    before = [linear.clone(), conv.clone()]
    member.after_step([linear, conv], torch.tensor([0.1, 0.1]))
    assert torch.equal(linear[0], before[0][0]) and torch.equal(conv[0], before[1][0])
    assert linear[1].norm(dim=1).max() <= 0.5 + 1e-5
    assert conv[1].flatten(1).norm(dim=1).max() <= 0.5 + 1e-5  # a unit: one channel's kernel
    solo = before[1][1].clone()
    MaxNorm(c=0.5).after_step([solo], 0.1)
    torch.testing.assert_close(conv[1], solo)


def test_member_strengths_follow_keep():
    member = MemberRegularizer([L2(lam=v) for v in (0.1, 0.2, 0.3)], ["lam"], CPU)
    member.keep(torch.tensor([2, 0]))
    w = nn.Parameter(torch.ones(2, 4))
    assert member.penalty([w]).tolist() == pytest.approx([1.2, 0.4])


class ItemPenalty(Regularizer):
    """A penalty that reads a value to the host: vmap cannot run it per member."""

    def __init__(self, lam: float) -> None:
        super().__init__()
        self.lam = lam

    def penalty(self, params):
        return params[0].abs().sum() * float(params[0].abs().max().item() > 0) * self.lam


class SummedPenalty(L2):
    def penalty(self, params):
        return self.lam * params[0].square().sum(0)  # not a scalar


@pytest.mark.parametrize("reg", [ItemPenalty, SummedPenalty])
def test_a_regularizer_that_cannot_run_per_member_is_refused(reg):
    member = MemberRegularizer([reg(lam=0.1), reg(lam=0.2)], ["lam"], CPU)
    w = nn.Parameter(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=rf"^regularizer {reg.__name__}.penalty: cannot be"):
        member.check([w], torch.tensor([0.1, 0.1]))


def test_a_stack_needs_one_kind_of_regularizer():
    with pytest.raises(ValueError, match="one kind of regularizer"):
        MemberRegularizer([L2(lam=0.1), L1(lam=0.1)], ["lam"], CPU)
