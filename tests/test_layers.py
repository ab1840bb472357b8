"""Known-answer tests of gan_bench.models.minibatch_discrimination and .virtual_batch_norm: minibatch discrimination
and virtual batch norm."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from gan_bench.models.minibatch_discrimination import MinibatchDiscrimination
from gan_bench.models.virtual_batch_norm import VirtualBatchNorm, vbn_forward, vbn_reference_pass

# ---------------------------------------------------------------- minibatch discrimination


def tiny_mbd() -> MinibatchDiscrimination:
    """A = 2 features, B = 2 kernels, C = 2 dims; kernel 0: M_{i,0} = x_i, kernel 1: M_{i,1} = (x_i0, x_i0)."""
    layer = MinibatchDiscrimination(2, 2, 2)
    t = torch.zeros(2, 2, 2)
    t[:, 0, :] = torch.eye(2)
    t[0, 1, :] = 1.0
    with torch.no_grad():
        layer.T.copy_(t)
    return layer


def test_minibatch_discrimination_hand_computed_three_samples():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    out = tiny_mbd()(x)
    e = math.exp
    # kernel 0: M = x, L1 distances d12 = 1, d13 = 2, d23 = 3 (and d_ii = 0 → the j = i term is 1)
    o0 = [1 + e(-1) + e(-2), e(-1) + 1 + e(-3), e(-2) + e(-3) + 1]
    # kernel 1: M = (0,0), (1,1), (0,0): d12 = 2, d13 = 0, d23 = 2
    o1 = [1 + e(-2) + 1, e(-2) + 1 + e(-2), 1 + e(-2) + 1]
    expected = torch.tensor([[0.0, 0.0, o0[0], o1[0]], [1.0, 0.0, o0[1], o1[1]], [0.0, 2.0, o0[2], o1[2]]])
    torch.testing.assert_close(out, expected)


def test_minibatch_discrimination_under_vmap_over_stacked_parameters():
    torch.manual_seed(0)
    layers = [MinibatchDiscrimination(4, 3, 2, init_std=0.5) for _ in range(3)]
    params, buffers = stack_module_state(layers)
    base = copy.deepcopy(layers[0]).to("meta")

    def one(p, x):
        return functional_call(base, (p, buffers), (x,))

    x_shared = torch.randn(5, 4)
    x_per_k = torch.randn(3, 5, 4)
    out_shared = vmap(one, in_dims=(0, None))(params, x_shared)
    out_per_k = vmap(one, in_dims=(0, 0))(params, x_per_k)
    assert out_shared.shape == (3, 5, 7)
    for k, layer in enumerate(layers):
        torch.testing.assert_close(out_shared[k], layer(x_shared))
        torch.testing.assert_close(out_per_k[k], layer(x_per_k[k]))
    # gradients through the vmapped layer reach each stacked T
    (g,) = torch.autograd.grad(out_shared[..., 4:].sum(), params["T"])
    (g1,) = torch.autograd.grad(layers[1](x_shared)[:, 4:].sum(), layers[1].T)
    torch.testing.assert_close(g[1], g1)


def test_minibatch_discrimination_rejects_bad_input():
    with pytest.raises(ValueError, match="must be >= 1"):
        MinibatchDiscrimination(4, 0, 2)
    with pytest.raises(ValueError, match=r"expected features of shape \[N, 4\]"):
        MinibatchDiscrimination(4, 3, 2)(torch.randn(5, 3))


# ---------------------------------------------------------------- virtual batch norm


def manual_vbn(ref: Tensor, x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """Reference: each x_i normalised with mean/var of concat(ref, x_i) over batch (and spatial) dims."""
    dims = [0] + list(range(2, x.dim()))
    shape = (1, -1) + (1,) * (x.dim() - 2)
    outs = []
    for i in range(x.shape[0]):
        both = torch.cat([ref, x[i : i + 1]])
        mean = both.mean(dim=dims).reshape(shape)
        var = both.var(dim=dims, unbiased=False).reshape(shape)
        outs.append((x[i : i + 1] - mean) / torch.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape))
    return torch.cat(outs)


def randomized_vbn(c: int) -> VirtualBatchNorm:
    layer = VirtualBatchNorm(c, eps=1e-3)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0)
        layer.bias.normal_()
    return layer


@pytest.mark.parametrize("shape", [(3,), (2, 3, 3)])
def test_vbn_uses_reference_plus_sample_statistics(shape):
    torch.manual_seed(1)
    layer = randomized_vbn(shape[0])
    ref = 2.0 + 3.0 * torch.randn(5, *shape)
    x = torch.randn(4, *shape)
    out = vbn_forward(layer, ref, x)
    torch.testing.assert_close(out, manual_vbn(ref, x, layer.weight, layer.bias, layer.eps), atol=1e-5, rtol=1e-5)
    # a sample's output does not depend on the rest of its batch (unlike batch norm)
    torch.testing.assert_close(vbn_forward(layer, ref, x[2:3]), out[2:3], atol=1e-6, rtol=1e-6)
    assert layer.reference is None  # released after the call


@pytest.mark.parametrize("shape", [(3,), (2, 3, 3)])
def test_vbn_reference_pass_is_batch_norm_of_the_reference(shape):
    torch.manual_seed(2)
    layer = randomized_vbn(shape[0])
    ref = torch.randn(6, *shape)
    with vbn_reference_pass(layer):
        out = layer(ref)
    expected = nn.functional.batch_norm(ref, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert layer.reference is not None and layer.reference[2] == 6
    assert not layer.recording


def test_vbn_in_a_network_matches_manual_two_pass_including_gradients():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4), randomized_vbn(4), nn.Tanh(), nn.Linear(4, 2), randomized_vbn(2))
    lin1, vbn1, _, lin2, vbn2 = net
    ref, x = torch.randn(5, 3), torch.randn(3, 3)

    out = vbn_forward(net, ref, x)
    (g_out,) = torch.autograd.grad(out.pow(2).sum(), lin1.weight)

    # manual: the reference batch goes through batch-normalised by its own statistics, layer by layer;
    # each x_i is normalised per layer with concat(reference activations, its own activation)
    def bn(h: Tensor, layer: VirtualBatchNorm) -> Tensor:
        return nn.functional.batch_norm(h, None, None, layer.weight, layer.bias, training=True, eps=layer.eps)

    h1_ref = lin1(ref)
    h2_ref = lin2(torch.tanh(bn(h1_ref, vbn1)))
    h1 = manual_vbn(h1_ref, lin1(x), vbn1.weight, vbn1.bias, vbn1.eps)
    manual = manual_vbn(h2_ref, lin2(torch.tanh(h1)), vbn2.weight, vbn2.bias, vbn2.eps)
    (g_manual,) = torch.autograd.grad(manual.pow(2).sum(), lin1.weight)

    torch.testing.assert_close(out, manual, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_out, g_manual, atol=1e-5, rtol=1e-5)  # gradient flows through reference stats


def test_vbn_rejects_bad_use():
    layer = VirtualBatchNorm(3)
    with pytest.raises(RuntimeError, match="no reference statistics"):
        layer(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"expected input \[N, 3, ...\]"):
        vbn_forward(layer, torch.randn(4, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match="no VirtualBatchNorm layer"):
        vbn_forward(nn.Linear(2, 2), torch.randn(4, 2), torch.randn(2, 2))
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        VirtualBatchNorm(0)
