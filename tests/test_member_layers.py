"""Stacked training: K solo models as one vectorized MemberNet (reglab.models.stack, its
layers in reglab.models.member_layers)."""

import zlib

import pytest
import torch
import torch.nn.functional as F

from reglab.models import CNN, MLP, DropoutSpec
from reglab.models.member_layers import MemberDropout, mix31
from reglab.models.stack import MemberNet, select_parameters, set_member_stochastic
from reglab.regularizers import Regularizer

K = 4
ARCHS = {
    "mlp_relu": (MLP, {"hidden": [12, 10], "activation": "relu"}),
    "mlp_sigmoid": (MLP, {"hidden": [12, 10], "activation": "sigmoid"}),
    "mlp_relu_bn": (MLP, {"hidden": [12, 10], "activation": "relu", "batchnorm": True}),
    "mlp_sigmoid_bn": (MLP, {"hidden": [12], "activation": "sigmoid", "batchnorm": True}),
    "cnn": (CNN, {"channels": [4, 6], "fc": [16]}),
    "cnn_bn": (CNN, {"channels": [4, 6], "fc": [16], "batchnorm": True}),
}
SHAPE = {MLP: (1, 6, 6), CNN: (1, 12, 12)}


def build(arch, seed, **overrides):
    cls, kwargs = ARCHS[arch]
    torch.manual_seed(seed)
    return cls(SHAPE[cls], 5, **{**kwargs, **overrides})


def stack(arch, seeds=range(K), **overrides):
    models = [build(arch, s, **overrides) for s in seeds]
    return models, MemberNet.from_solo(models, [1000 + s for s in seeds])


def inputs(arch, k=K, n=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(k, n, *SHAPE[ARCHS[arch][0]], generator=gen)


def set_mode(train, net, models):
    net.train(train)
    for m in models:
        m.train(train)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("arch", ARCHS)
def test_member_k_computes_solo_model_k(arch, train):
    models, net = stack(arch)
    set_mode(train, net, models)
    x = inputs(arch)
    out = net(x)
    assert out.shape == (K, 8, 5)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x[k]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_of_member_slices_equal_solo_gradients(arch):
    models, net = stack(arch)
    set_mode(True, net, models)
    x, y = inputs(arch), torch.randint(0, 5, (K, 8))
    out = net(x)
    sum(F.cross_entropy(out[k], y[k]) for k in range(K)).backward()
    for k, model in enumerate(models):
        F.cross_entropy(model(x[k]), y[k]).backward()
        solo = dict(model.named_parameters())
        for name, param in net.named_parameters():
            torch.testing.assert_close(param.grad[k], solo[name].grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("arch", ["mlp_relu_bn", "cnn_bn"])
def test_running_stats_follow_the_solo_models(arch):
    models, net = stack(arch)
    set_mode(True, net, models)
    for step in range(3):
        x = inputs(arch, seed=step)
        net(x)
        for k, model in enumerate(models):
            model(x[k])
    for k, model in enumerate(models):
        state = net.member_state_dict(k)
        assert state.keys() == model.state_dict().keys()
        for key, value in model.state_dict().items():
            torch.testing.assert_close(state[key], value, atol=1e-6, rtol=1e-5)
    assert net.bn1.num_batches_tracked.tolist() == [3] * K


@pytest.mark.parametrize("arch", ["mlp_relu_bn", "cnn_bn", "cnn"])
def test_member_state_dict_round_trips_through_a_solo_model(arch):
    models, net = stack(arch)
    set_mode(True, net, models)
    net(inputs(arch, seed=3))  # move the running stats away from their initial values
    net.eval()
    x = inputs(arch)
    out = net(x)
    for k in range(K):
        fresh = build(arch, seed=99).eval()
        fresh.load_state_dict(net.member_state_dict(k))
        torch.testing.assert_close(fresh(x[k]), out[k], atol=1e-5, rtol=1e-5)
    net.load_member_state_dict(1, models[3].state_dict())
    models[3].eval()
    torch.testing.assert_close(net(x)[1], models[3](x[1]), atol=1e-5, rtol=1e-5)
    with pytest.raises(KeyError, match="missing"):
        net.load_member_state_dict(0, {})


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("arch", ["mlp_relu_bn", "cnn_bn"])
def test_forward_of_a_member_subset_equals_those_rows(arch, train):
    _, net = stack(arch, dropout=DropoutSpec(p_input=0.8, p_hidden=0.5))
    net.train()
    net(inputs(arch, seed=5))  # running stats that differ per member
    net.train(train)
    net.set_mask_counter([7, 3, 5, 9])
    x = inputs(arch)
    full = net(x)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    idx = torch.tensor([3, 0])
    torch.testing.assert_close(net(x[idx], members=idx), full[idx], atol=1e-5, rtol=1e-5)
    for name, p in net.named_parameters():
        assert torch.equal(p, before[name])
    if train:  # only the forwarded members' running stats moved, by one more batch
        assert net.bn1.num_batches_tracked.tolist() == [3, 2, 2, 3]


def test_keep_leaves_exactly_those_members_in_parameter_order():
    models, net = stack("cnn_bn")
    old = list(net.parameters())
    mapping = net.keep([3, 1])
    assert net.num_members == 2 and net.seeds.tolist() == [1003, 1001]
    assert list(mapping) == old and list(mapping.values()) == list(net.parameters())
    set_mode(False, net, models)
    x = inputs("cnn_bn", k=2)
    out = net(x)
    for k, solo in enumerate([models[3], models[1]]):
        torch.testing.assert_close(out[k], solo(x[k]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_select_parameters_mirrors_the_regularizers_selection(biases, batchnorm):
    models, net = stack("cnn_bn")
    solo_names = {id(p): name for name, p in models[0].named_parameters()}
    solo = Regularizer(biases, batchnorm).parameters(models[0])
    member_names = {id(p): name for name, p in net.named_parameters()}
    selected = select_parameters(net, include_biases=biases, include_batchnorm=batchnorm)
    assert [member_names[id(p)] for p in selected] == [solo_names[id(p)] for p in solo]


def test_activation_hooks_see_member_tensors_under_the_solo_names():
    models, net = stack("mlp_relu")
    solo_acts = [n for n, m in models[0].named_modules() if isinstance(m, torch.nn.ReLU)]
    member_acts = [n for n, m in net.named_modules() if isinstance(m, torch.nn.ReLU)]
    assert member_acts == solo_acts == ["act1", "act2"]
    shapes = []
    net.act2.register_forward_hook(lambda m, inp, out: shapes.append(out.shape) and None)
    net(inputs("mlp_relu"))
    assert shapes == [(K, 8, 10)]


# --- dropout -------------------------------------------------------------------------

SEEDS = {"a": 11, "b": 22, "c": 33, "d": 44}
P = {"a": 0.3, "b": 0.5, "c": 0.7, "d": 0.9}


def member_masks(order, counter=5, shape=(6, 20), spatial=False, salt=7):
    layer = MemberDropout([P[m] for m in order], spatial=spatial, salt=salt)
    seeds = torch.tensor([SEEDS[m] for m in order])
    counters = torch.full((len(order),), counter)
    return layer.masks((len(order), *shape), seeds, counters, layer.p)


@pytest.mark.parametrize("spatial", [False, True])
def test_masks_of_a_member_do_not_depend_on_the_stack(spatial):
    shape = (6, 5, 3, 3)
    alone = member_masks("b", shape=shape, spatial=spatial)[0]
    assert torch.equal(member_masks("abcd", shape=shape, spatial=spatial)[1], alone)
    assert torch.equal(member_masks("dcba", shape=shape, spatial=spatial)[2], alone)
    assert not torch.equal(member_masks("b", counter=6, shape=shape, spatial=spatial)[0], alone)


def test_net_masks_of_a_member_do_not_depend_on_the_stack():
    """Member b trains the same in [a, b, c, d], [d, c, b, a] and alone; p differs per member."""
    p_retain = {"a": 0.4, "b": 0.6, "c": 0.8, "d": 1.0}  # d: no dropout layers at all
    models = {
        m: build("mlp_relu", i, dropout=DropoutSpec(p_input=p_retain[m], p_hidden=p_retain[m]))
        for i, m in enumerate("abcd")
    }
    x_b = inputs("mlp_relu", k=1)[0]

    def member_b_output(order, counter=4):
        net = MemberNet.from_solo([models[m] for m in order], [SEEDS[m] for m in order])
        net.set_mask_counter(counter)
        x = torch.stack([x_b] * len(order))
        return net.train()(x)[order.index("b")]

    alone = member_b_output("b")
    torch.testing.assert_close(member_b_output("abcd"), alone, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(member_b_output("dcba"), alone, atol=1e-6, rtol=1e-5)
    assert (member_b_output("b", counter=5) - alone).abs().max() > 1e-2
    # the member without dropout layers gets p = 1 layers and computes its solo model
    net = MemberNet.from_solo([models["a"], models["d"]], [1, 2])
    assert [n for n, _ in net.named_children()] == [n for n, _ in models["a"].named_children()]
    assert net.drop1.p.tolist() == pytest.approx([0.4, 1.0])
    x = inputs("mlp_relu", k=2)
    torch.testing.assert_close(net.train()(x)[1], models["d"].train()(x[1]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_retention_rate_is_p(p):
    layer = MemberDropout([p, p], mode="weight_scaling").train()
    out = layer(torch.ones(2, 200, 1000), torch.tensor([3, 4]), torch.tensor([0, 0]))
    kept = (out != 0).float().mean((1, 2))
    assert (kept - p).abs().max() < 0.005  # 200k Bernoulli draws: std ≈ 0.001


def overlap(m1, m2):
    return (m1 & m2).float().mean().item()


def test_masks_of_different_counters_members_and_layers_are_uncorrelated():
    p, shape = 0.5, (1, 200, 1000)
    layer = MemberDropout([p])

    def masks(seed=1, counter=0, salt=0):
        layer.salt = salt
        return layer.masks(shape, torch.tensor([seed]), torch.tensor([counter]), layer.p)[0]

    base = masks()
    others = [masks(counter=1), masks(counter=-1), masks(seed=2), masks(salt=5)]
    others.append(masks(salt=zlib.crc32(b"drop2")))
    for other in others:
        assert abs(overlap(base, other) - p * p) < 0.006
    flat, next_flat = base.flatten(), masks(counter=1).flatten()
    for shift in (1, 2, 1000):  # no counter's masks are shifted copies of another's
        assert abs(overlap(flat[shift:], next_flat[:-shift]) - p * p) < 0.006
        assert abs(overlap(flat[shift:], flat[:-shift]) - p * p) < 0.006


def test_spatial_masks_are_constant_over_each_feature_map():
    layer = MemberDropout([0.5, 0.5], spatial=True).train()
    out = layer(torch.ones(2, 8, 16, 6, 6), torch.tensor([1, 2]), torch.tensor([0, 0]))
    maps = out.flatten(3)
    assert torch.all((maps == 0).all(3) | (maps == 2.0).all(3))
    assert 0.3 < (maps == 0).all(3).float().mean() < 0.7


@pytest.mark.parametrize("mode", ["inverted", "weight_scaling"])
def test_training_expectation_equals_test_time_output(mode):
    x = torch.randn(2, 1, 50).expand(2, 40_000, 50)
    layer = MemberDropout([0.3, 0.7], mode=mode)
    seeds, counter = torch.tensor([5, 6]), torch.tensor([0, 0])
    mean_train = layer.train()(x, seeds, counter).mean(1)
    test = layer.eval()(x[:, :1], seeds, counter)[:, 0]
    torch.testing.assert_close(mean_train, test, atol=0.05, rtol=0.05)
    if mode == "weight_scaling":
        torch.testing.assert_close(test, x[:, 0] * torch.tensor([[0.3], [0.7]]))


def test_p_one_is_identity_and_bad_p_is_rejected():
    x = torch.randn(2, 4, 5)
    seeds, counter = torch.tensor([1, 2]), torch.tensor([0, 0])
    assert MemberDropout([1.0, 1.0]).train()(x, seeds, counter) is x
    mixed = MemberDropout([1.0, 0.5], mode="weight_scaling").train()(x, seeds, counter)
    assert torch.equal(mixed[0], x[0]) and not torch.equal(mixed[1], x[1])
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="retention probability"):
            MemberDropout([0.5, bad])


def test_stochastic_masks_in_eval_mode():
    _, net = stack("mlp_relu", dropout=DropoutSpec(p_input=1.0, p_hidden=0.5))
    x = inputs("mlp_relu")
    net.eval()
    deterministic = net(x)
    set_member_stochastic(net, True)
    net.set_mask_counter(-1)  # Monte-Carlo samples use counters -1, -2, ...
    first = net(x)
    assert not torch.allclose(first, deterministic)
    torch.testing.assert_close(net(x), first)  # same counter, same masks
    net.set_mask_counter(-2)
    assert not torch.allclose(net(x), first)
    set_member_stochastic(net, False)
    torch.testing.assert_close(net(x), deterministic)


def test_mask_hash_is_pinned_and_stays_below_2_31():
    x = torch.tensor([0, 1, 2, 12345, 2**31 - 1])
    h = mix31(x)
    assert h.tolist()[0] == 0 and bool((h >= 0).all()) and bool((h < 2**31).all())
    assert len(set(mix31(torch.arange(100_000)).tolist())) == 100_000  # a bijection


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_masks_are_identical_on_cpu_and_cuda():
    layer = MemberDropout([0.3, 0.5, 0.9], salt=3)
    seeds, counter = torch.tensor([1, 2, 3]), torch.tensor([0, 17, -4])
    cpu = layer.masks((3, 64, 100), seeds, counter, layer.p)
    layer.cuda()
    gpu = layer.masks((3, 64, 100), seeds.cuda(), counter.cuda(), layer.p)
    assert torch.equal(cpu, gpu.cpu())
