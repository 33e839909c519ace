"""Dropout with retention probability p (Srivastava et al. 2014) and counter-based masks."""

import zlib

import pytest
import torch
from torch import nn

from reglab.evaluation import mc_log_probs
from reglab.models import CNN, MLP, DropoutSpec, RetentionDropout, bind_dropout, set_stochastic
from reglab.models.dropout import mix31, set_mask_counter


def layer_with(p=0.5, seed=0, counter=0, salt=0, **kwargs):
    layer = RetentionDropout(p, salt=salt, **kwargs)
    layer.seed.fill_(seed)
    layer.counter.fill_(counter)
    return layer


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_retention_rate_is_p(p):
    layer = layer_with(p, mode="weight_scaling").train()
    out = layer(torch.ones(200, 1000))
    kept = (out != 0).float().mean().item()
    assert abs(kept - p) < 0.005  # 200k Bernoulli draws: std ≈ 0.001


def test_p_one_is_identity_and_bad_settings_are_rejected():
    x = torch.randn(4, 5)
    assert torch.equal(RetentionDropout(1.0).train()(x), x)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="retention probability"):
            RetentionDropout(bad)
    with pytest.raises(ValueError, match="allowed are inverted, weight_scaling"):
        RetentionDropout(0.5, mode="scaled")


def test_spatial_dropout_drops_whole_channels():
    out = layer_with(0.5, seed=1, spatial=True).train()(torch.ones(8, 16, 6, 6))
    per_channel = out.flatten(2)
    # every channel map is either all zero or all kept (scaled by 1/p)
    assert torch.all((per_channel == 0).all(2) | (per_channel == 2.0).all(2))
    assert 0.3 < (per_channel == 0).all(2).float().mean() < 0.7


def test_standard_dropout_on_conv_maps_drops_single_units():
    out = layer_with(0.5, seed=1).train()(torch.ones(8, 16, 6, 6))
    mixed = ((out.flatten(2) == 0).any(2) & (out.flatten(2) != 0).any(2)).float().mean()
    assert mixed > 0.9


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_training_expectation_equals_test_time_output(mode):
    """E[training output] = test-time output, for both conventions."""
    x = torch.randn(1, 50)
    layer = layer_with(0.3, seed=2, mode=mode)
    mean_train = layer.train()(x.expand(40_000, 50)).mean(0)
    test = layer.eval()(x)[0]
    torch.testing.assert_close(mean_train, test, atol=0.05, rtol=0.05)
    if mode == "weight_scaling":
        torch.testing.assert_close(test, 0.3 * x[0])


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
    """For dropout followed by a linear map the MC mean converges to the scaled net (§7.5).
    Pass i uses mask counter -(i + 1); each of its 100 copies of x draws its own masks."""
    torch.manual_seed(0)
    net = nn.Sequential(layer_with(0.5, seed=3, mode="weight_scaling"), nn.Linear(100, 5)).eval()
    x = torch.randn(20, 100)
    with torch.no_grad():
        target = net(x)
        set_stochastic(net, True)
        draws = []
        for i in range(40):
            set_mask_counter(net, -(i + 1))
            draws.append(net(x.repeat(100, 1)).view(100, 20, 5))
        draws = torch.cat(draws)
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
    set_mask_counter(net, 12)
    x = torch.randn(200, 1, 8, 8)
    with torch.no_grad():
        ws = net(x).argmax(1)
    agree = {k: (mc_log_probs(net, x, k).argmax(1) == ws).float().mean().item() for k in (1, 100)}
    assert agree[100] > agree[1] + 0.1
    assert agree[100] > 0.7  # an untrained net has near-ties; weight scaling approximates
    assert net.drop1.counter.item() == 12 and not net.drop1.stochastic  # as it was


def test_masks_are_a_function_of_seed_counter_and_salt():
    def masks(seed, counter=0):
        layer = layer_with(0.5, seed=seed, counter=counter).train()
        return [layer(torch.ones(4, 10)) for _ in range(3)]

    first = masks(7)
    assert all(torch.equal(a, b) for a, b in zip(first, masks(7), strict=True))
    assert not torch.equal(first[0], first[1]), "each training forward draws new masks"
    assert torch.equal(masks(7, counter=1)[0], first[1])  # counter 0 → 1 → 2
    assert not torch.equal(first[0], masks(8)[0])


def overlap(m1, m2):
    return (m1 & m2).float().mean().item()


def test_masks_of_different_counters_seeds_and_layers_are_uncorrelated():
    p, shape = 0.5, torch.Size((200, 1000))

    def masks(seed=1, counter=0, salt=0):
        return layer_with(p, seed=seed, counter=counter, salt=salt).keep_mask(shape, "cpu")

    base = masks()
    others = [masks(counter=1), masks(counter=-1), masks(seed=2), masks(salt=5)]
    others.append(masks(salt=zlib.crc32(b"drop2")))
    for other in others:
        assert abs(overlap(base, other) - p * p) < 0.006
    flat, next_flat = base.flatten(), masks(counter=1).flatten()
    for shift in (1, 2, 1000):  # no counter's masks are shifted copies of another's
        assert abs(overlap(flat[shift:], next_flat[:-shift]) - p * p) < 0.006
        assert abs(overlap(flat[shift:], flat[:-shift]) - p * p) < 0.006


def test_mask_hash_is_pinned_and_stays_below_2_31():
    h = mix31(torch.tensor([0, 1, 2, 12345, 2**31 - 1]))
    assert h.tolist()[0] == 0 and bool((h >= 0).all()) and bool((h < 2**31).all())
    assert len(set(mix31(torch.arange(100_000)).tolist())) == 100_000  # a bijection


def test_solo_mlp_draws_new_masks_every_training_forward():
    """In any training loop (a user's Trainer too) the counter advances by one per
    forward; the same seed gives the same masks, another seed others."""

    def outputs(seed):
        torch.manual_seed(0)  # the same weights
        net = MLP((1, 4, 4), 3, hidden=[32], dropout=DropoutSpec(0.8, 0.5), seed=seed).train()
        x = torch.ones(6, 1, 4, 4)
        return net, [net(x) for _ in range(3)]

    net, first = outputs(7)
    assert net.drop_in.counter.item() == 3 and net.drop1.counter.item() == 3
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])
    _, again = outputs(7)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(outputs(8)[1][0], first[0])


def test_bind_dropout_converts_a_users_dropout_to_retention():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Dropout2d(0.2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 3)
    )
    bind_dropout(net, 42)
    assert isinstance(net[1], RetentionDropout) and isinstance(net[3], RetentionDropout)
    assert net[1].spatial and not net[3].spatial
    assert net[1].p.item() == pytest.approx(0.8) and net[3].p.item() == pytest.approx(0.7)
    salts = [zlib.crc32(name) & 0x7FFF_FFFF for name in (b"1", b"3")]  # qualified names
    assert [net[1].salt, net[3].salt] == salts
    assert net[1].seed.item() == net[3].seed.item() == 42
    out = net.train()(torch.ones(8, 1, 6, 6))
    assert out.shape == (8, 3)
    with pytest.raises(ValueError, match=r"nn.Dropout\(p=1\)"):
        bind_dropout(nn.Sequential(nn.Dropout(1.0)), 0)


def test_p_one_layers_stay_so_dropout_rates_share_an_architecture():
    def names(p):
        net = MLP((1, 4, 4), 3, hidden=[8], dropout=DropoutSpec(p, p))
        return [n for n, m in net.named_modules() if isinstance(m, RetentionDropout)], net

    (without, net), (with_, _) = names(1.0), names(0.5)
    assert without == with_ == ["drop_in", "drop1"]
    x = torch.randn(5, 1, 4, 4)
    torch.testing.assert_close(net.train()(x), net.eval()(x))  # p = 1: identity


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
