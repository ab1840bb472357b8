"""gan_bench.models.resnet: the SNGAN ResNet G and D (shapes, parameter counts, init, FLOPs, vectorised ensemble)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_bench.cost import count_flops
from gan_bench.models.ensemble import DiscriminatorEnsemble
from gan_bench.models.resnet import Discriminator, Generator


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------- shapes, range, bad shapes


@pytest.mark.parametrize("variant", ["sngan", "lagan"])
@pytest.mark.parametrize("res, channels", [(32, 3), (48, 3), (64, 1)])
def test_shapes_range_and_features(res, channels, variant):
    torch.manual_seed(0)
    g = Generator(16, (channels, res, res), width=8, variant=variant)
    d = Discriminator((channels, res, res), width=4, variant=variant)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, channels, res, res)
    assert x.abs().max() <= 1 and x.std() > 0  # tanh output, not constant
    logit = d(x)
    logit2, feats = d(x, return_features=True)
    assert logit.shape == (3,) and torch.equal(logit, logit2)
    n_features = 4 if res == 32 else 8 * 4  # 32x32: width; 48/64: the last block has 8 * width channels
    assert feats.shape == (3, n_features) and d.n_features == n_features
    assert (feats >= 0).all()  # pooled after the final ReLU
    torch.testing.assert_close(logit, d.head(feats).squeeze(-1))


@pytest.mark.parametrize("shape", [(3, 28, 28), (3, 32, 64), (3, 128, 128), (32, 32)])
def test_unsupported_shapes_raise_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"H = W in \(32, 48, 64\)"):
        Generator(8, shape, width=8)
    with pytest.raises(ValueError, match=r"H = W in \(32, 48, 64\)"):
        Discriminator(shape, width=8)


def test_bad_variant_and_width_raise():
    with pytest.raises(ValueError, match="unknown ResNet variant 'dcgan'"):
        Discriminator((3, 32, 32), variant="dcgan")
    with pytest.raises(ValueError, match="divisible by 4"):
        Generator(8, (3, 64, 64), width=6)  # 64x64 uses width / 4 channels in its last block


# ---------------------------------------------------------------- parameter counts (defaults, 32x32, z 128, RGB)

C3 = 256 * 256 * 9 + 256  # a 3x3 conv 256 -> 256 with bias: 590,080
BN = 2 * 256  # affine BatchNorm2d(256): 512
# G: dense 128 -> 4*4*256 (+ bias); 3 up-blocks of BN, conv, BN, conv, 1x1 shortcut conv (256*256 + 256 = 65,792);
#    final BN; conv 256 -> 3 (6,912 + 3)
G_SNGAN = (128 * 4096 + 4096) + 3 * (BN + C3 + BN + C3 + 65_792) + BN + (256 * 3 * 9 + 3)
D1 = 128 * 128 * 9 + 128  # a 3x3 conv 128 -> 128 with bias: 147,584
# D: optimized block (conv 3 -> 128: 3,456 + 128; conv 128 -> 128; 1x1 shortcut 3 -> 128: 384 + 128),
#    down-block (2 convs + 1x1 shortcut 128 -> 128: 16,384 + 128), 2 plain blocks (2 convs each),
#    head 128 -> 1 (no bias)
D_SNGAN = (3 * 128 * 9 + 128 + D1 + 3 * 128 + 128) + (2 * D1 + 128 * 128 + 128) + 2 * (2 * D1) + 128


def test_parameter_counts_at_32x32_match_the_reference_architecture():
    assert G_SNGAN == 4_276_739 and D_SNGAN == 1_053_824  # SNGAN CIFAR-10: G ~ 4.3M, D ~ 1.05M
    assert n_params(Generator(128, (3, 32, 32))) == G_SNGAN
    assert n_params(Discriminator((3, 32, 32))) == D_SNGAN
    # LAGAN code: no 1x1 shortcut convs in G's up-blocks, a bias on D's head
    assert n_params(Generator(128, (3, 32, 32), variant="lagan")) == G_SNGAN - 3 * 65_792 == 4_079_363
    assert n_params(Discriminator((3, 32, 32), variant="lagan")) == D_SNGAN + 1


def test_discriminator_is_only_conv_and_linear_layers():
    """Every parameterised layer (shortcuts and head included) is Conv2d / Linear, so the ensemble spectral-normalises
    all of them; no buffers (no running statistics) that vmap would have to update."""
    d = Discriminator((3, 48, 48), width=4)
    layers = [m for m in d.modules() if list(m.parameters(recurse=False))]
    assert layers and all(isinstance(m, (nn.Conv2d, nn.Linear)) for m in layers)
    assert len(list(d.buffers())) == 0
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in layers) == 5  # 5 learned shortcuts


@pytest.mark.parametrize("variant, res_gain, sc_gain", [("sngan", math.sqrt(2), 1.0), ("lagan", 1.0, math.sqrt(2))])
def test_initialisation_gains(variant, res_gain, sc_gain):
    """xavier_uniform_: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)); SNGAN zeroes biases (Chainer)."""
    torch.manual_seed(0)
    d = Discriminator((3, 32, 32), variant=variant)

    def bound(w: torch.Tensor, gain: float) -> float:
        rf = w[0, 0].numel()
        return gain * math.sqrt(6.0 / (w.shape[1] * rf + w.shape[0] * rf))

    for w, gain in [(d.blocks[1].conv1.weight, res_gain), (d.blocks[1].shortcut.weight, sc_gain),
                    (d.head.weight, 1.0)]:
        b = bound(w, gain)
        assert w.abs().max() <= b and w.abs().max() > 0.9 * b
    assert (d.blocks[1].conv1.bias == 0).all() == (variant == "sngan")


# ---------------------------------------------------------------- FLOPs (FlopCounterMode: 2 * multiply-adds)


def d_flops_32(w: int, c: int, b: int) -> int:
    """Convs and the head of D at 32x32 (pooling, ReLU and sums are not counted by torch's FLOP counter)."""
    macs = (w * c * 9 * 32 * 32 + w * w * 9 * 32 * 32 + w * c * 16 * 16  # optimized block; shortcut after pooling
            + 2 * w * w * 9 * 16 * 16 + w * w * 16 * 16  # down-block; its 1x1 shortcut runs before pooling
            + 4 * w * w * 9 * 8 * 8  # two plain blocks at 8x8
            + w)  # head
    return 2 * b * macs


def g_flops_32(w: int, z: int, c: int, b: int) -> int:
    macs = z * 16 * w + sum(2 * w * w * 9 * r * r + w * w * r * r for r in (8, 16, 32)) + w * c * 9 * 32 * 32
    return 2 * b * macs


def test_flops_match_the_closed_form():
    torch.manual_seed(0)
    d, g = Discriminator((3, 32, 32), width=16), Generator(32, (3, 32, 32), width=16)
    x, z = torch.randn(2, 3, 32, 32), torch.randn(2, 32)
    _, fd = count_flops(lambda: d(x))
    _, fg = count_flops(lambda: g(z))
    assert fd == d_flops_32(16, 3, 2) > 0
    assert fg == g_flops_32(16, 32, 3, 2) > 0
    # the default sizes, one image: D 0.54 GFLOP, G 3.36 GFLOP per forward (closed form only, not run)
    assert d_flops_32(128, 3, 1) == 544_145_664 and g_flops_32(256, 128, 3, 1) == 3_362_258_944


# ---------------------------------------------------------------- vectorised ensemble vs. K separate modules


def with_torch_spectral_norm(d: nn.Module, u0: dict[str, torch.Tensor], k: int) -> nn.Module:
    """A copy of D with torch's spectral_norm on every Conv2d / Linear, its singular vectors set to the ones the
    ensemble's single power-iteration step takes from its buffer u (v = W^T u / |.|, u' = W v / |.|), in eval mode
    (no further iteration): both then divide by the same sigma = u'^T W v and differentiate the same way."""
    from torch.nn.utils.parametrizations import spectral_norm

    m = copy.deepcopy(d)
    for name, u in u0.items():
        layer = m.get_submodule(name.rsplit(".", 1)[0])
        mat = layer.weight.detach().reshape(layer.weight.shape[0], -1)
        v = F.normalize(mat.t() @ u[k], dim=0, eps=1e-12)
        spectral_norm(layer, n_power_iterations=1, eps=1e-12)
        sn = layer.parametrizations.weight[0]
        sn._v.copy_(v)
        sn._u.copy_(F.normalize(mat @ v, dim=0, eps=1e-12))
    return m.eval()


def build(k: int = 3):
    """``DiscriminatorEnsemble.build`` of k discriminators, and the k modules it stacked, each with torch's
    spectral norm started where the ensemble's power iteration starts."""
    torch.manual_seed(0)
    made: list[nn.Module] = []

    def make() -> nn.Module:
        made.append(Discriminator((3, 32, 32), width=8))
        return made[-1]

    ens = DiscriminatorEnsemble.build(make, k, spectral_norm=True)  # stacks copies: `made` keeps the originals
    u0 = {n: getattr(ens, "sn_u__" + n.replace(".", "__")).clone() for n in ens.sn_names}
    refs = [with_torch_spectral_norm(m, u0, i) for i, m in enumerate(made)]
    return ens.eval(), refs


def test_ensemble_with_spectral_norm_equals_a_loop_of_torch_spectral_norm():
    ens, refs = build()
    assert len(ens.sn_names) == 4 * 2 + 2 + 1  # 8 residual convs, 2 shortcuts, the head: all normalised
    x = torch.randn(4, 3, 32, 32)
    out, feats = ens(x, return_features=True)
    ref = [m(x, return_features=True) for m in refs]
    torch.testing.assert_close(out, torch.stack([o for o, _ in ref]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(feats, torch.stack([f for _, f in ref]), atol=1e-4, rtol=1e-5)
    w = torch.tensor([1.0, 2.0, 3.0])  # mix the discriminators differently so that a wrong routing would show
    (torch.sigmoid(out).mean(1) * w).sum().backward()
    (torch.stack([torch.sigmoid(o).mean() for o, _ in ref]) * w).sum().backward()
    for name, p in ens.param_dict().items():
        if name in ens.sn_names:
            module = name.rsplit(".", 1)[0]
            grads = [m.get_submodule(module).parametrizations.weight.original.grad for m in refs]
        else:
            grads = [m.get_parameter(name).grad for m in refs]
        torch.testing.assert_close(p.grad, torch.stack(grads), atol=1e-5, rtol=1e-4)


def test_ensemble_per_member_inputs_and_input_gradients():
    ens, refs = build()
    xs = torch.randn(3, 2, 3, 32, 32)  # one batch per discriminator
    torch.testing.assert_close(ens(xs, per_member=True), torch.stack([m(x) for m, x in zip(refs, xs)]),
                               atol=1e-5, rtol=1e-5)
    x = torch.randn(2, 3, 32, 32)
    xk = ens.member_views(x).requires_grad_(True)
    (g,) = torch.autograd.grad(ens(xk, per_member=True).sum(), xk)  # K input-gradients from one backward
    for i, m in enumerate(refs):
        xi = x.clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(m(xi).sum(), xi)
        torch.testing.assert_close(g[i], gi, atol=1e-5, rtol=1e-4)


def test_ensemble_power_iteration_converges_to_torch_spectral_norm():
    """Training mode: from different random vectors, both power iterations reach the same normalised D."""
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(1)
    modules = [Discriminator((1, 32, 32), width=4) for _ in range(2)]
    ens = DiscriminatorEnsemble(copy.deepcopy(modules), spectral_norm=True).train()
    refs = []
    for m in modules:
        for name in ens.sn_names:
            spectral_norm(m.get_submodule(name.rsplit(".", 1)[0]), n_power_iterations=1, eps=1e-12)
        refs.append(m.train())
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        for _ in range(40):
            out, ref = ens(x), torch.stack([m(x) for m in refs])
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-3)
