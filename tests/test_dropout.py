"""Dropout with retention probability p (Srivastava et al. 2014)."""

import pytest
import torch
from torch import nn

from reglab.evaluation import mc_log_probs
from reglab.models import CNN, MLP, DropoutSpec, MaskSource, RetentionDropout, set_stochastic


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_retention_rate_is_p(p):
    layer = RetentionDropout(p, MaskSource(0), mode="weight_scaling").train()
    out = layer(torch.ones(200, 1000))
    kept = (out != 0).float().mean().item()
    assert abs(kept - p) < 0.005  # 200k Bernoulli draws: std ≈ 0.001


def test_p_one_is_identity_and_bad_p_is_rejected():
    x = torch.randn(4, 5)
    assert torch.equal(RetentionDropout(1.0, MaskSource(0)).train()(x), x)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="retention probability"):
            RetentionDropout(bad, MaskSource(0))


def test_spatial_dropout_drops_whole_channels():
    layer = RetentionDropout(0.5, MaskSource(1), spatial=True).train()
    out = layer(torch.ones(8, 16, 6, 6))
    per_channel = out.flatten(2)
    # every channel map is either all zero or all kept (scaled by 1/p)
    assert torch.all((per_channel == 0).all(2) | (per_channel == 2.0).all(2))
    assert 0 < (per_channel == 0).all(2).float().mean() < 1


def test_standard_dropout_on_conv_maps_drops_single_units():
    out = RetentionDropout(0.5, MaskSource(1), spatial=False).train()(torch.ones(8, 16, 6, 6))
    mixed = ((out.flatten(2) == 0).any(2) & (out.flatten(2) != 0).any(2)).float().mean()
    assert mixed > 0.9


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_training_expectation_equals_test_time_output(mode):
    """E[training output] = test-time output, for both conventions."""
    x = torch.randn(1, 50)
    layer = RetentionDropout(0.3, MaskSource(2), mode=mode)
    mean_train = layer.train()(x.expand(40_000, 50)).mean(0)
    test = layer.eval()(x)[0]
    torch.testing.assert_close(mean_train, test, atol=0.05, rtol=0.05)


def test_two_modes_agree_in_expectation_for_the_same_weights():
    """Weight scaling's test net equals the inverted net whose weights are scaled by p."""
    torch.manual_seed(0)
    p = 0.5
    nets = {
        mode: MLP((1, 4, 4), 3, hidden=[32], dropout=DropoutSpec(p_input=1, p_hidden=p, mode=mode))
        for mode in ("inverted", "weight_scaling")
    }
    nets["weight_scaling"].load_state_dict(nets["inverted"].state_dict())
    x = torch.randn(10, 1, 4, 4)
    ws = nets["weight_scaling"].eval()(x)
    with torch.no_grad():  # the lecture's form: multiply the outgoing weights by p
        nets["inverted"].out.weight.mul_(p)
    torch.testing.assert_close(nets["inverted"].eval()(x), ws)


def test_monte_carlo_average_converges_to_weight_scaling():
    """For dropout followed by a linear map the MC mean converges to the scaled net (§7.5)."""
    torch.manual_seed(0)
    net = nn.Sequential(
        RetentionDropout(0.5, MaskSource(3), mode="weight_scaling"), nn.Linear(100, 5)
    ).eval()
    x = torch.randn(20, 100)
    with torch.no_grad():
        target = net(x)
        set_stochastic(net, True)
        draws = torch.stack([net(x) for _ in range(4000)])
        set_stochastic(net, False)
    errors = [(draws[:k].mean(0) - target).abs().mean().item() for k in (4, 40, 400, 4000)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < errors[0] / 10
    assert torch.equal(net(x), target), "evaluation is deterministic again afterwards"


def test_mc_prediction_matches_weight_scaling_for_many_samples():
    torch.manual_seed(0)
    net = MLP(
        (1, 8, 8),
        10,
        hidden=[256, 256],
        dropout=DropoutSpec(p_input=0.8, p_hidden=0.5, mode="inverted"),
    ).eval()
    x = torch.randn(200, 1, 8, 8)
    with torch.no_grad():
        ws = net(x).argmax(1)
    agree = {k: (mc_log_probs(net, x, k).argmax(1) == ws).float().mean().item() for k in (1, 100)}
    assert agree[100] > agree[1] + 0.1
    assert agree[100] > 0.7  # an untrained net has near-ties; weight scaling approximates


def test_masks_are_fixed_by_the_seed():
    def masks(seed):
        layer = RetentionDropout(0.5, MaskSource(seed)).train()
        return [layer(torch.ones(4, 10)) for _ in range(3)]

    assert all(torch.equal(a, b) for a, b in zip(masks(7), masks(7), strict=True))
    assert not torch.equal(masks(7)[0], masks(8)[0])


def test_cnn_uses_spatial_dropout_in_conv_blocks_only():
    net = CNN(
        (1, 28, 28),
        10,
        channels=[4, 8],
        fc=[16],
        dropout=DropoutSpec(p_input=0.9, p_hidden=0.5, spatial=True),
    )
    drops = {n: m for n, m in net.named_modules() if isinstance(m, RetentionDropout)}
    assert {n: m.spatial for n, m in drops.items()} == {
        "drop_in": False,
        "drop1": True,
        "drop2": True,
        "drop3": False,
    }
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
