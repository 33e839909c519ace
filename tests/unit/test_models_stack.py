"""Stacked training: K solo models as one vectorized StackedNet (reglab.models.stack,
torch.func's model-ensembling recipe), each member exactly its solo model."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reglab.models import CNN, MLP, DropoutSpec, RetentionDropout, bind_dropout
from reglab.models.dropout import set_mask_counter, set_stochastic
from reglab.models.stack import StackedNet, StackError
from reglab.regularizers import Regularizer

K = 4
DROP = DropoutSpec(p_input=0.8, p_hidden=0.5)  # spatial in conv blocks (the default)
ARCHS = {
    "mlp_relu": (MLP, {"hidden": [12, 10], "activation": "relu"}),
    "mlp_sigmoid": (MLP, {"hidden": [12, 10], "activation": "sigmoid"}),
    "mlp_relu_bn_drop": (MLP, {"hidden": [12, 10], "batchnorm": True, "dropout": DROP}),
    "mlp_sigmoid_bn": (MLP, {"hidden": [12], "activation": "sigmoid", "batchnorm": True}),
    "cnn_drop": (CNN, {"channels": [4, 6], "fc": [16], "dropout": DROP}),
    "cnn_bn_drop": (CNN, {"channels": [4, 6], "fc": [16], "batchnorm": True, "dropout": DROP}),
}
SHAPE = {MLP: (1, 6, 6), CNN: (1, 12, 12)}


def build(arch, init, **overrides):
    """A solo model: its init from ``init``, its dropout masks from ``seed`` (1000 + init)."""
    cls, kwargs = ARCHS[arch]
    torch.manual_seed(init)
    return cls(SHAPE[cls], 5, **{**kwargs, "seed": 1000 + init, **overrides})


def stack(arch, seeds=range(K), **overrides):
    models = [build(arch, s, **overrides) for s in seeds]
    return models, StackedNet(models)


def inputs(arch, k=K, n=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(k, n, *SHAPE[ARCHS[arch][0]], generator=gen)


def set_mode(train, net, models, counter=7):
    """Train/eval mode everywhere, every dropout counter at ``counter``."""
    if net is not None:
        net.train(train).set_mask_counter(counter)
    for m in models:
        m.train(train)
        set_mask_counter(m, counter)


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
    if train and "drop" in arch:  # each training forward moves the counters on, as solo
        assert net.body.drop1.counter.tolist() == [8] * K
        assert models[0].drop1.counter.item() == 8


def test_modes_set_by_attribute_are_followed():
    """Lightning restores modes by setting each submodule's ``training`` (after its sanity
    check, validate, test): the stack then trains as its members do, dropout and BN too."""
    models, net = stack("mlp_relu_bn_drop")
    net.eval()
    for module in net.modules():
        module.training = True
    set_mode(True, None, models)
    net.set_mask_counter(7)
    x = inputs("mlp_relu_bn_drop")
    out = net(x)
    for k, model in enumerate(models):
        torch.testing.assert_close(out[k], model(x[k]), atol=1e-5, rtol=1e-5)
    assert net.body.drop1.counter.tolist() == [8] * K


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
        for name, param in net.body.named_parameters():
            torch.testing.assert_close(param.grad[k], solo[name].grad, rtol=1e-4, atol=1e-6)


def test_linear_weights_are_stored_in_major():
    _, net = stack("mlp_relu_bn_drop")
    weights = [p for p in net.parameters() if p.dim() == 3]
    assert len(weights) == 3
    for w in weights:  # (K, out, in) seen, (K, in, out) in memory
        assert w.transpose(1, 2).is_contiguous() and not w.is_contiguous()


@pytest.mark.parametrize("arch", ["mlp_relu_bn_drop", "cnn_bn_drop"])
def test_running_stats_follow_the_solo_models(arch):
    """Each member's batchnorm keeps its own running statistics in training mode."""
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
    assert net.body.bn1.num_batches_tracked.tolist() == [3] * K
    means = net.body.bn1.running_mean
    assert not torch.allclose(means[0], means[1])


@pytest.mark.parametrize("arch", ["mlp_relu_bn_drop", "cnn_bn_drop", "cnn_drop"])
def test_member_state_dict_round_trips_through_a_solo_model(arch):
    models, net = stack(arch)
    set_mode(True, net, models)
    net(inputs(arch, seed=3))  # move the running stats away from their initial values
    net.eval()
    x = inputs(arch)
    out = net(x)
    for k in range(K):
        fresh = build(arch, 99).eval()
        fresh.load_state_dict(net.member_state_dict(k))
        torch.testing.assert_close(fresh(x[k]), out[k], atol=1e-5, rtol=1e-5)
    net.load_member_state_dict(1, models[3].state_dict())
    models[3].eval()
    torch.testing.assert_close(net(x)[1], models[3](x[1]), atol=1e-5, rtol=1e-5)
    with pytest.raises(KeyError, match="missing"):
        net.load_member_state_dict(0, {})


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("arch", ["mlp_relu_bn_drop", "cnn_bn_drop"])
def test_forward_of_a_member_subset_equals_those_rows(arch, train):
    _, net = stack(arch)
    net.train()
    net(inputs(arch, seed=5))  # running stats that differ per member
    net.train(train)
    net.set_mask_counter(torch.tensor([7, 3, 5, 9]))
    before = {n: t.detach().clone() for n, t in net.body.state_dict(keep_vars=True).items()}
    x, idx = inputs(arch), torch.tensor([3, 0])
    part = net(x[idx], members=idx)
    for name, t in net.body.state_dict(keep_vars=True).items():  # copies: nothing written
        assert torch.equal(t, before[name]), name
    torch.testing.assert_close(part, net(x)[idx], atol=1e-5, rtol=1e-5)


def test_keep_leaves_those_members_in_layout_and_parameter_order():
    models, net = stack("cnn_bn_drop")
    names = [n for n, _ in net.named_parameters()]
    net.eval()(inputs("cnn_bn_drop")).sum().backward()  # gradients, stats untouched
    net.keep([3, 1])
    assert net.num_members == 2 and [n for n, _ in net.named_parameters()] == names
    assert all(p.grad is None for p in net.parameters())
    assert all(p.transpose(1, 2).is_contiguous() for p in net.parameters() if p.dim() == 3)
    seeds = [models[k].drop1.seed.item() for k in (3, 1)]
    assert net.body.drop1.seed.tolist() == seeds
    kept = [models[3], models[1]]
    for train in (False, True):  # weights, running stats and masks are theirs
        set_mode(train, net, kept)
        x = inputs("cnn_bn_drop", k=2)
        out = net(x)
        for k, solo in enumerate(kept):
            torch.testing.assert_close(out[k], solo(x[k]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_regularizer_selects_the_same_parameters_in_a_stack(biases, batchnorm):
    models, net = stack("cnn_bn_drop")
    solo_names = {id(p): name for name, p in models[0].named_parameters()}
    solo = Regularizer(biases, batchnorm).parameters(models[0])
    member_names = {id(p): name for name, p in net.body.named_parameters()}
    selected = Regularizer(biases, batchnorm).parameters(net.body)
    assert [member_names[id(p)] for p in selected] == [solo_names[id(p)] for p in solo]
    assert len(selected) == 4 + 4 * biases + 6 * batchnorm  # 3 blocks + out; 3 BN layers


def test_recorded_activations_are_the_solo_models_under_their_names():
    models, net = stack("mlp_relu")
    solo_acts = [n for n, m in models[0].named_modules() if isinstance(m, nn.ReLU)]
    x, idx = inputs("mlp_relu"), torch.tensor([2, 0])
    out, records = net.eval().forward_recording(x[idx], idx, (nn.ReLU,))
    assert list(records) == solo_acts == ["act1", "act2"]
    assert records["act2"][1].shape == (2, 8, 10)
    for i, k in enumerate(idx.tolist()):
        seen = {}
        hook = models[k].act2.register_forward_hook(
            lambda *a, seen=seen: seen.setdefault("o", a[2])
        )
        torch.testing.assert_close(out[i], models[k].eval()(x[k]), atol=1e-5, rtol=1e-5)
        hook.remove()
        torch.testing.assert_close(records["act2"][1][i], seen["o"], atol=1e-5, rtol=1e-5)


def test_different_architectures_do_not_stack():
    with pytest.raises(StackError, match="another architecture"):
        StackedNet([build("mlp_relu", 0), build("mlp_relu", 1, hidden=[12, 11])])


# --- what vmap cannot run -------------------------------------------------------------


class Noisy(nn.Module):
    def forward(self, x):
        return x + torch.randn(x.shape)


def test_check_refuses_a_random_module_naming_it():
    models = [nn.Sequential(OrderedDict(fc=nn.Linear(4, 4), noise=Noisy())) for _ in range(2)]
    net = StackedNet(models)
    with pytest.raises(StackError, match=r"^noise \(Noisy\): cannot run per member") as info:
        net.check(torch.randn(2, 3, 4))
    assert "random" in str(info.value) and "\n" not in str(info.value)
    StackedNet([nn.Sequential(nn.Linear(4, 4), nn.ReLU())] * 2).check(torch.randn(2, 3, 4))


class ReadsAValue(nn.Module):
    """Data-dependent Python control flow: fine in a plain forward, refused by vmap."""

    def forward(self, x):
        return x * 2 if x.sum().item() > 0 else x


def test_vmap_solo_false_calls_a_stack_of_one_directly():
    models = [nn.Sequential(OrderedDict(fc=nn.Linear(4, 4), gate=ReadsAValue()))]
    with pytest.raises(StackError, match=r"^gate \(ReadsAValue\): cannot run per member"):
        StackedNet(models).check(torch.randn(1, 3, 4))
    direct = StackedNet(models, vmap_solo=False)
    assert direct.direct
    direct.check(torch.randn(1, 3, 4))  # no vmap: the model runs as it does alone
    x = torch.randn(1, 3, 4)
    # the net as written, its weights in the stack's in-major layout: equal to rounding
    torch.testing.assert_close(direct(x)[0], models[0](x[0]), rtol=1e-5, atol=1e-6)
    assert not StackedNet(models * 2, vmap_solo=False).direct  # a stack of two is vmapped


def test_a_users_nn_dropout_stacks_with_its_solo_masks():
    def user_model(seed):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.Dropout2d(0.5), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 3)
        )
        return bind_dropout(net, seed)

    models = [user_model(s) for s in (5, 6, 7)]
    net = StackedNet(models).train()
    net.check(torch.randn(3, 2, 1, 6, 6))
    x = torch.randn(3, 8, 1, 6, 6)
    out = net(x)
    for k, m in enumerate(models):
        torch.testing.assert_close(out[k], m.train()(x[k]), atol=1e-5, rtol=1e-5)


# --- dropout masks in a stack ---------------------------------------------------------

SEEDS = {"a": 11, "b": 22, "c": 33, "d": 44}
P = {"a": 0.3, "b": 0.5, "c": 0.7, "d": 1.0}


def dropout_layer(member, spatial):
    layer = RetentionDropout(P[member], spatial=spatial, salt=7)
    layer.seed.fill_(SEEDS[member])
    return layer


@pytest.mark.parametrize("spatial", [False, True])
def test_layer_masks_of_a_member_do_not_depend_on_the_stack(spatial):
    ones = torch.ones(6, 5, 3, 3)

    def outputs(order, counter=5):
        net = StackedNet([dropout_layer(m, spatial) for m in order]).train()
        net.set_mask_counter(counter)
        return net(ones.expand(len(order), *ones.shape))

    alone = outputs("b")[0]
    assert torch.equal(outputs("abcd")[1], alone) and torch.equal(outputs("dcba")[2], alone)
    solo = dropout_layer("b", spatial).train()
    solo.counter.fill_(5)
    assert torch.equal(solo(ones), alone)
    assert not torch.equal(outputs("b", counter=6)[0], alone)
    assert torch.equal(outputs("dcba")[0], ones)  # d: p = 1 keeps everything


def test_net_masks_of_a_member_do_not_depend_on_the_stack():
    """Member b trains the same in [a, b, c, d], [d, c, b, a] and alone; p differs per
    member, and d has p = 1 (its layers present but skipped)."""
    p_retain = {"a": 0.4, "b": 0.6, "c": 0.8, "d": 1.0}
    models = {
        m: build("mlp_relu", i, dropout=DropoutSpec(p_retain[m], p_retain[m]), seed=SEEDS[m])
        for i, m in enumerate("abcd")
    }
    x_b = inputs("mlp_relu", k=1)[0]

    def member_b_output(order, counter=4):
        net = StackedNet([models[m] for m in order]).train()
        net.set_mask_counter(counter)
        return net(torch.stack([x_b] * len(order)))[order.index("b")]

    alone = member_b_output("b")
    torch.testing.assert_close(member_b_output("abcd"), alone, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(member_b_output("dcba"), alone, atol=1e-6, rtol=1e-5)
    assert (member_b_output("b", counter=5) - alone).abs().max() > 1e-2
    net = StackedNet([models["a"], models["d"]]).train()
    assert net.body.drop1.p.tolist() == pytest.approx([0.4, 1.0])
    x = inputs("mlp_relu", k=2)
    torch.testing.assert_close(net(x)[1], models["d"].train()(x[1]), atol=1e-5, rtol=0)


def test_stochastic_masks_in_eval_mode():
    """Monte-Carlo passes (Srivastava §7.5) use counters -1, -2, ...; none advance them."""
    _, net = stack("mlp_relu", dropout=DropoutSpec(p_input=1.0, p_hidden=0.5))
    x = inputs("mlp_relu")
    net.eval()
    deterministic = net(x)
    net.set_stochastic(True)
    net.set_mask_counter(-1)
    first = net(x)
    assert not torch.allclose(first, deterministic)
    torch.testing.assert_close(net(x), first)  # same counter, same masks
    assert net.body.drop1.counter.tolist() == [-1] * K
    net.set_mask_counter(-2)
    assert not torch.allclose(net(x), first)
    net.set_mask_counter(1)  # a training step's masks are not an MC pass's
    assert not torch.allclose(net(x), first)
    net.set_stochastic(False)
    torch.testing.assert_close(net(x), deterministic)


def test_stacked_mc_passes_equal_solo_mc_passes():
    models, net = stack("cnn_drop")
    x = inputs("cnn_drop")
    net.eval().set_stochastic(True)
    net.set_mask_counter(-3)
    out = net(x)
    for k, m in enumerate(models):
        set_stochastic(m.eval(), True)
        set_mask_counter(m, -3)
        torch.testing.assert_close(out[k], m(x[k]), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (masks CPU vs CUDA)")
def test_masks_are_identical_on_cpu_and_cuda():
    layer = RetentionDropout(0.3, salt=3)
    layer.seed.fill_(2)
    layer.counter.fill_(-4)
    cpu = layer.keep_mask(torch.Size((64, 100)), torch.device("cpu"))
    gpu = layer.cuda().keep_mask(torch.Size((64, 100)), torch.device("cuda"))
    assert torch.equal(cpu, gpu.cpu())
    models, net = stack("cnn_bn_drop")
    set_mode(True, net, models)
    x = inputs("cnn_bn_drop")
    on_cpu = net(x)
    net.cuda().set_mask_counter(7)
    torch.testing.assert_close(net(x.cuda()).cpu(), on_cpu, atol=1e-4, rtol=1e-4)
