"""reglab.models.vmap_order: a stack of one called directly under VmapOrder computes, bit for
bit, what vmap computes; ``vmap_solo="auto"`` takes that path only after a trial step shows
it. (The architectures and inputs are test_models_stack's.)"""

import pytest
import torch
import torch.nn.functional as F
from test_models_stack import ARCHS, build, inputs
from torch import nn

from reglab.models.stack import StackedNet
from reglab.models.vmap_order import VmapOrder


@pytest.mark.parametrize("arch", ARCHS)
def test_a_direct_stack_of_one_trains_bitwise_as_its_vmapped_self(arch):
    """The same member, vmapped or called directly (under VmapOrder): three training
    steps' outputs, weights, batchnorm statistics and masks, and an evaluation, all equal
    bit for bit."""
    nets = [StackedNet([build(arch, 3)], vmap_solo=v) for v in (True, "auto")]
    nets[1].direct = True  # what choose_solo_path() sets once its trial step is equal
    x = inputs(arch, k=1, n=16)
    for net in nets:
        net.train()
        for step in range(3):
            net.set_mask_counter(step)
            net(x).square().mean().backward()
            with torch.no_grad():
                for p in net.parameters():
                    p -= 0.5 * p.grad
                    p.grad = None
    vmapped, direct = nets
    assert torch.equal(vmapped.eval()(x), direct.eval()(x))
    for (name, a), b in zip(
        vmapped.body.state_dict().items(), direct.body.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_without_vmap_order_a_direct_call_differs_in_rounding():
    """Why VmapOrder exists: batch_norm's fused kernel folds the affine part into its
    normalization, vmap multiplies and adds after it. (Whether ``linear``'s fused bias
    differs too depends on the CPU's BLAS kernel: it did on one test machine, not on
    another; VmapOrder makes both equal on any.)"""
    torch.manual_seed(0)

    def bn(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)

    x, w, b = torch.randn(1, 64, 128), torch.randn(1, 128), torch.randn(1, 128)
    vmapped = torch.func.vmap(bn)(x, w, b)[0]
    assert not torch.equal(bn(x[0], w[0], b[0]), vmapped)
    with VmapOrder():
        assert torch.equal(bn(x[0], w[0], b[0]), vmapped)
    x, w, b = torch.randn(1, 64, 256), torch.randn(1, 256, 128).transpose(1, 2), torch.randn(1, 128)
    with VmapOrder():  # weights in the stack's in-major layout
        assert torch.equal(F.linear(x[0], w[0], b[0]), torch.func.vmap(F.linear)(x, w, b)[0])


@pytest.mark.parametrize("arch", ["mlp_relu_bn_drop", "cnn_bn_drop"])
def test_auto_takes_the_direct_call_only_when_a_trial_step_is_bitwise_equal(arch):
    net = StackedNet([build(arch, 3)])  # vmap_solo="auto"
    assert not net.direct  # until the trial
    before = {n: t.clone() for n, t in net.body.state_dict().items()}
    assert net.choose_solo_path(inputs(arch, k=1, n=16)) is None
    assert net.direct
    assert all(torch.equal(t, before[n]) for n, t in net.body.state_dict().items())  # copies
    assert not StackedNet([build(arch, 3)] * 2).direct  # stacks are vmapped


def test_auto_stays_vmapped_when_the_direct_call_rounds_differently(monkeypatch):
    class Fused(nn.Module):  # an op VmapOrder does not split: torch.batch_norm by hand
        def __init__(self):
            super().__init__()
            self.w, self.b = nn.Parameter(torch.randn(128)), nn.Parameter(torch.randn(128))

        def forward(self, x):
            return torch.batch_norm(x, self.w, self.b, None, None, True, 0.1, 1e-5, False)

    net = StackedNet([Fused()])
    reason = net.choose_solo_path(torch.randn(1, 64, 128))
    assert reason == "the direct call's output differs from vmap's in rounding"
    assert not net.direct
