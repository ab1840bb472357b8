"""gan_bench.models.hgan: the multi-discriminator paper's conv nets (shapes, parameter counts from the authors' layer
lists, bad plans, vectorised ensemble vs K separate modules)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from gan_bench.errors import ConfigError
from gan_bench.models.ensemble import DiscriminatorEnsemble
from gan_bench.models.hgan import ConvDiscriminator, ConvTGenerator
from gan_bench.models.projection import Projected, WeightNormConv


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


# ---------------------------------------------------------------- shapes

# (discriminator kwargs, its input shape) for the three layer plans of the presets
CIFAR_D = ({}, (1, 32, 32))  # behind the conv_wn projection of a 3x64x64 image
CIFAR_D_NOPROJ = ({"head_padding": 0, "norm": "batch"}, (3, 64, 64))
STACKED_D = ({"num_filters": [64, 128, 256], "paddings": [2, 2, 1]}, (3, 14, 14))
LAGAN_D = ({"num_filters": [64, 128, 256], "head_kernel": 3, "head_padding": 0, "norm": "batch", "bias": False,
            "init": "torch"}, (1, 28, 28))


@pytest.mark.parametrize("kwargs, shape", [CIFAR_D, CIFAR_D_NOPROJ, STACKED_D, LAGAN_D])
def test_discriminator_gives_one_logit_per_image_and_its_features(kwargs, shape):
    torch.manual_seed(0)
    d = ConvDiscriminator(shape, **kwargs)
    x = torch.randn(3, *shape)
    logit = d(x)
    logit2, feats = d(x, return_features=True)
    assert logit.shape == (3,) and torch.equal(logit, logit2)
    assert feats.shape == (3, d.n_features)
    torch.testing.assert_close(logit, d.head(feats.view(3, -1, *d.features(x).shape[2:])).flatten())


GENERATORS = [
    ({}, (3, 64, 64), 100),
    ({"num_filters": [512, 256, 128, 64], "stem": "dense", "stem_size": 2, "paddings": [1, 1, 2]}, (3, 28, 28), 100),
    ({"num_filters": [512, 256, 128], "stem_size": 3, "paddings": [1, 0], "bias": False, "init": "torch"},
     (1, 28, 28), 128),
]


@pytest.mark.parametrize("kwargs, shape, z_dim", GENERATORS)
def test_generator_shapes_and_range(kwargs, shape, z_dim):
    torch.manual_seed(0)
    g = ConvTGenerator(z_dim, shape, **kwargs)
    x = g(torch.randn(4, z_dim))
    assert x.shape == (4, *shape)
    assert x.abs().max() <= 1 and x.std() > 0


def test_impossible_plans_are_one_config_error():
    with pytest.raises(ConfigError, match="must give one logit"):
        ConvDiscriminator((3, 64, 64))  # 4 convs reach 4x4: a 4/1/1 head gives 3x3 logits
    with pytest.raises(ConfigError, match="paddings"):
        ConvDiscriminator((1, 32, 32), paddings=[1, 1])
    with pytest.raises(ConfigError, match="generate 64x64 images; the data is 32x32"):
        ConvTGenerator(100, (3, 32, 32))
    with pytest.raises(ConfigError, match="square images"):
        ConvDiscriminator((2,))


# ---------------------------------------------------------------- parameter counts from the authors' layer lists


def test_cifar64_parameter_counts_match_the_authors_layer_lists():
    # hGAN Discriminator(3, [128, 256, 512, 1024], 1) after its 3 -> 1 projection: convs 4/2/1 with bias, head 4/1/1
    d_proj = conv(1, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1024, 4) + conv(1024, 1, 4)
    assert d_proj == 11_030_401
    assert n_params(ConvDiscriminator((1, 32, 32))) == d_proj
    # the single-D baseline: no projection (first conv sees 3 channels), BatchNorm (affine) after convs 2-4
    d_one = d_proj - conv(1, 128, 4) + conv(3, 128, 4) + 2 * (256 + 512 + 1024)
    assert n_params(ConvDiscriminator((3, 64, 64), head_padding=0, norm="batch")) == d_one == 11_038_081
    # hGAN Generator(100, [1024, 512, 256, 128], 3): ConvT with bias, BatchNorm after each hidden ConvT
    g = (conv(100, 1024, 4) + conv(1024, 512, 4) + conv(512, 256, 4) + conv(256, 128, 4) + conv(128, 3, 4)
         + 2 * (1024 + 512 + 256 + 128))
    assert n_params(ConvTGenerator(100, (3, 64, 64))) == g == 12_660_355
    # the projection has no trainable parameter (a buffer)
    assert n_params(WeightNormConv((3, 64, 64))) == 0


def test_stacked_mnist_and_lagan_parameter_counts():
    # hGAN Discriminator_stacked_mnist after its 3 -> 3 projection; Generator_stacked_mnist (dense stem 2x2x512)
    d = conv(3, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 1, 4)
    assert n_params(ConvDiscriminator((3, 14, 14), num_filters=[64, 128, 256], paddings=[2, 2, 1])) == d
    g = (100 * 2048 + 2048 + 2 * 2048 + conv(512, 256, 4) + conv(256, 128, 4) + conv(128, 64, 4) + conv(64, 3, 4)
         + 2 * (256 + 128 + 64))
    kw = {"num_filters": [512, 256, 128, 64], "stem": "dense", "stem_size": 2, "paddings": [1, 1, 2]}
    assert n_params(ConvTGenerator(100, (3, 28, 28), **kw)) == g
    # LAGAN's GeneratorCNN28 / DiscriminatorCNN28: no conv biases, BatchNorm on G's hidden maps and D's convs 2-3
    d28 = conv(1, 64, 4, False) + conv(64, 128, 4, False) + conv(128, 256, 4, False) + conv(256, 1, 3, False)
    d28 += 2 * (128 + 256)
    assert n_params(ConvDiscriminator(LAGAN_D[1], **LAGAN_D[0])) == d28
    g28 = (conv(128, 512, 3, False) + conv(512, 256, 4, False) + conv(256, 128, 4, False) + conv(128, 1, 4, False)
           + 2 * (512 + 256 + 128))
    assert n_params(ConvTGenerator(128, (1, 28, 28), **GENERATORS[2][0])) == g28


def test_dcgan_initialisation():
    torch.manual_seed(0)
    d = ConvDiscriminator((1, 32, 32))
    w = d.features[-2].weight  # the 512 -> 1024 conv
    assert abs(w.std().item() - 0.02) < 1e-3 and (d.head.bias == 0).all()


# ---------------------------------------------------------------- vectorised ensemble vs K separate modules


@pytest.mark.parametrize("kwargs, shape, projected", [(CIFAR_D[0], (3, 64, 64), True),
                                                      (CIFAR_D_NOPROJ[0], (3, 64, 64), False),
                                                      (LAGAN_D[0], LAGAN_D[1], False)])
def test_ensemble_equals_k_separate_modules(kwargs, shape, projected):
    torch.manual_seed(0)
    made: list[nn.Module] = []

    def make() -> nn.Module:
        d_in = (1, shape[1] // 2, shape[2] // 2) if projected else shape
        d = ConvDiscriminator(d_in, **kwargs)
        made.append(Projected(WeightNormConv(shape), d) if projected else d)
        return made[-1]

    k = 3
    ens = DiscriminatorEnsemble.build(make, k)
    refs = [copy.deepcopy(m) for m in made[-k:]]
    x = torch.randn(4, *shape)
    out, feats = ens(x, return_features=True)
    ref = [m(x, return_features=True) for m in refs]
    # float rounding: on the CPU the ensemble (layout loop) convolves channels-last batches, the modules NCHW ones
    torch.testing.assert_close(out, torch.stack([o for o, _ in ref]), atol=5e-5, rtol=1e-5)
    torch.testing.assert_close(feats, torch.stack([f for _, f in ref]), atol=5e-5, rtol=1e-5)
    w = torch.tensor([1.0, 2.0, 3.0])
    (out.mean(1) * w).sum().backward()
    (torch.stack([o.mean() for o, _ in ref]) * w).sum().backward()
    for name, p in ens.param_dict().items():
        torch.testing.assert_close(p.grad, torch.stack([m.get_parameter(name).grad for m in refs]),
                                   atol=1e-5, rtol=1e-4)
