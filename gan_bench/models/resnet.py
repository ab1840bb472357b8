"""ResNet generator and discriminator of SNGAN (Miyato et al., ICLR 2018) for 32x32, 48x48 and 64x64 images.

Where each setting comes from (code read, none copied; written from the descriptions below):

* 32x32, ``variant="sngan"`` (default) -- the SNGAN authors' Chainer code, pfnet-research/sngan_projection:
  ``gen_models/resnet_32.py`` + ``gen_models/resblocks.py`` (G) and ``dis_models/snresnet_32.py`` +
  ``dis_models/resblocks.py`` (D), with the sizes of ``configs/sn_cifar10_unconditional.yml`` (z 128, G ch 256,
  D ch 128, bottom width 4).
  G: z -> Linear(z, 4*4*256) -> 3 x up-block(256 -> 256) -> BN -> ReLU -> conv3x3(256 -> C) -> tanh.
     up-block: BN -> ReLU -> nearest x2 upsampling -> conv3x3 -> BN -> ReLU -> conv3x3, plus a LEARNED shortcut
     (x2 upsampling -> conv1x1; the Chainer block learns its shortcut whenever it upsamples).
  D: optimized first block (conv3x3 -> ReLU -> conv3x3 -> avgpool2; shortcut avgpool2 -> conv1x1, no ReLU on the
     raw image) 32 -> 16, down-block 16 -> 8, two plain blocks at 8x8 (ReLU -> conv3x3 -> ReLU -> conv3x3, identity
     shortcut), all 128 channels; ReLU -> global SUM pooling -> Linear(128, 1) WITHOUT bias.
     down-block: ReLU -> conv3x3 -> ReLU -> conv3x3 -> avgpool2, shortcut conv1x1 -> avgpool2. A D block's first
     conv keeps the input width (``hidden_channels = in_channels``), the optimized block's widens at once.
  Init: GlorotUniform(sqrt 2) for the 3x3 residual convs, GlorotUniform(1) for the 1x1 shortcuts, the dense
  layer, the output conv and the linear head; biases 0 (Chainer's default); Chainer's BatchNormalization eps 2e-5.
  The PyTorch port kwotsin/mimicry (``torch_mimicry/nets/modules/resblocks.py``, ``nets/sngan/sngan_32.py``) does
  the same (xavier_uniform_ gain sqrt(2) / 1), except bilinear upsampling, a head bias and torch's default bias
  init; we keep Chainer's choices.
* 32x32, ``variant="lagan"`` -- the Lookahead-minmax authors' code (Chavdarova et al., ICLR 2021; FID 12.19 on
  CIFAR-10), Chavdarova/LAGAN-Lookahead_Minimax ``lagan/models/resnet_models.py`` (G 256 / D 128, z 128 per
  ``lagan/exe.sh``), itself christiancosgrove/pytorch-spectral-normalization-gan ``model_resnet.py`` with G 256.
  Same layers, but: G's up-blocks have an IDENTITY shortcut (nearest upsampling only, no 1x1 conv); D pools with a
  global MEAN (``AvgPool2d(8)``), so its features and logits are 64x smaller than SNGAN's sum; the head has a
  bias; the init gains are swapped (xavier_uniform_ gain 1 on the 3x3 residual convs, sqrt(2) on D's 1x1
  shortcuts; dense, output conv and head gain 1); biases keep PyTorch's default init; BatchNorm eps 1e-5.
* 48x48 (the SNGAN paper's STL-10 ResNet, bottom width 6) -- kwotsin/mimicry ``torch_mimicry/nets/sngan/sngan_48.py``
  (sngan_projection has no 48x48 model): G Linear(z, 6*6*512) -> up 256 -> up 128 -> up 64 -> BN, ReLU, conv, tanh;
  D optimized 64 (48 -> 24) -> down 128 (12) -> down 256 (6) -> down 512 (3) -> plain block 1024 -> ReLU -> sum
  -> Linear(1024, 1) with bias.
* 64x64 -- pfnet-research/sngan_projection ``gen_models/resnet_64.py`` and ``dis_models/snresnet_64.py`` (ch 64;
  also kwotsin/mimicry ``nets/sngan/sngan_64.py``): G Linear(z, 4*4*1024) -> up 512 -> 256 -> 128 -> 64 -> BN, ReLU,
  conv, tanh; D optimized 64 (64 -> 32) -> down 128 (16) -> 256 (8) -> 512 (4) -> 1024 (2) -> ReLU -> sum ->
  Linear(1024, 1) with bias.

``width`` scales every layer: the 48/64 channel plans are the references' channels expressed in the 32x32 defaults
(G width 256: 512 = 2 * width, ..., 64 = width / 4; D width 128: 64 = width / 2, ..., 1024 = 8 * width). Blocks
whose channel count changes always learn their shortcut. The discriminator is a pure function of its parameters
(only Conv2d / Linear layers, no norm, no buffers, no in-place ops) so that gan_bench.models.ensemble can vmap K
copies and spectral-normalise every Conv2d / Linear (shortcuts included), as SNGAN does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_bench.models.base import DISCRIMINATORS, GENERATORS
from gan_bench.registry import choice

RESOLUTIONS = (32, 48, 64)
Variant = choice("ResNetVariant", ("sngan", "lagan"))

# bottom width and the channels (dense layer's, then each up-block's output) in units of width / 4
_G_PLAN = {32: (4, (4, 4, 4, 4)), 48: (6, (8, 4, 2, 1)), 64: (4, (16, 8, 4, 2, 1))}
# (output channels in units of width / 2, downsample) for each D block; the first one is the optimized block
_D_PLAN = {
    32: ((2, True), (2, True), (2, False), (2, False)),
    48: ((1, True), (2, True), (4, True), (8, True), (16, False)),
    64: ((1, True), (2, True), (4, True), (8, True), (16, True)),
}


@dataclass(frozen=True)
class _Variant:
    residual_gain: float  # xavier_uniform_ gain of the 3x3 convs inside the residual branches
    shortcut_gain: float  # ... of the 1x1 shortcut convs
    zero_bias: bool  # Chainer initialises biases to 0; PyTorch ports keep torch's default
    bn_eps: float
    g_learned_shortcut: bool  # G's up-blocks learn their shortcut even when the width is unchanged
    pooling: str  # "sum" or "mean" over the final feature map
    head_bias_at_32: bool  # 48/64 references all have a head bias


VARIANTS = {
    "sngan": _Variant(math.sqrt(2.0), 1.0, True, 2e-5, True, "sum", False),
    "lagan": _Variant(1.0, math.sqrt(2.0), False, 1e-5, False, "mean", True),
}


def _check(shape: Sequence[int], role: str, width: int, variant: str) -> tuple[int, int]:
    """(channels, resolution) of a (C, H, W) image shape; ValueError on anything this architecture does not cover."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in RESOLUTIONS:
        raise ValueError(f"ResNet (SNGAN) {role} supports (C, H, W) images with H = W in {RESOLUTIONS}, "
                         f"got shape {shape}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown ResNet variant {variant!r}; choose one of {sorted(VARIANTS)}")
    if width < 1:
        raise ValueError(f"ResNet {role} width must be >= 1, got {width}")
    return shape[0], shape[1]


def _scaled(width: int, unit: int, multiples: Sequence[int], role: str, resolution: int) -> list[int]:
    if any(width * m % unit for m in multiples):
        raise ValueError(f"ResNet {role} at {resolution}x{resolution} needs a width divisible by {unit}, got {width}")
    return [width * m // unit for m in multiples]


def _xavier(layer: nn.Module, gain: float, zero_bias: bool) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain)
    if zero_bias and layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GBlock(nn.Module):
    """BN -> ReLU -> x2 up -> conv3x3 -> BN -> ReLU -> conv3x3, plus x2 up [-> conv1x1] on the shortcut."""

    def __init__(self, cin: int, cout: int, v: _Variant):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin, eps=v.bn_eps), nn.BatchNorm2d(cout, eps=v.bn_eps)
        self.conv1 = _xavier(nn.Conv2d(cin, cout, 3, 1, 1), v.residual_gain, v.zero_bias)
        self.conv2 = _xavier(nn.Conv2d(cout, cout, 3, 1, 1), v.residual_gain, v.zero_bias)
        learned = v.g_learned_shortcut or cin != cout
        # the LAGAN code has no 1x1 conv in G; where the width changes we follow SNGAN's gain for it
        self.shortcut = _xavier(nn.Conv2d(cin, cout, 1), 1.0, v.zero_bias) if learned else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_up(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        s = _up(x)
        return h + (self.shortcut(s) if self.shortcut is not None else s)


class DBlock(nn.Module):
    """Discriminator block. ``optimized`` (the first block, on the raw image): conv3x3 -> ReLU -> conv3x3 -> pool,
    shortcut pool -> conv1x1. Otherwise: ReLU -> conv3x3 -> ReLU -> conv3x3 [-> pool], shortcut identity or
    conv1x1 [-> pool] (learned when downsampling or changing width). Pooling is a 2x2 average."""

    def __init__(self, cin: int, cout: int, v: _Variant, downsample: bool, optimized: bool = False):
        super().__init__()
        self.downsample, self.optimized = downsample or optimized, optimized
        hidden = cout if optimized else cin
        self.conv1 = _xavier(nn.Conv2d(cin, hidden, 3, 1, 1), v.residual_gain, v.zero_bias)
        self.conv2 = _xavier(nn.Conv2d(hidden, cout, 3, 1, 1), v.residual_gain, v.zero_bias)
        learned = optimized or downsample or cin != cout
        self.shortcut = _xavier(nn.Conv2d(cin, cout, 1), v.shortcut_gain, v.zero_bias) if learned else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.optimized else F.relu(x))))
        h = self._pool(h)
        if self.shortcut is None:
            return h + x
        if self.optimized:  # pool first: the 1x1 conv then runs on a 4x smaller map (as in the references)
            return h + self.shortcut(self._pool(x))
        return h + self._pool(self.shortcut(x))


@GENERATORS.register("resnet")
class Generator(nn.Module):
    """SNGAN ResNet generator: ``forward(z [B, z_dim]) -> images [B, C, H, W]`` in [-1, 1] (see the module doc)."""

    def __init__(self, z_dim: int, out_shape: Sequence[int], *, width: int = 256, variant: Variant = "sngan"):
        super().__init__()
        variant = str(variant)
        channels, res = _check(out_shape, "generator", width, variant)
        v = VARIANTS[variant]
        self.z_dim, self.out_shape = z_dim, (channels, res, res)
        self.bottom, units = _G_PLAN[res]
        chans = _scaled(width, 4, units, "generator", res)
        self.dense = _xavier(nn.Linear(z_dim, self.bottom * self.bottom * chans[0]), 1.0, v.zero_bias)
        self.blocks = nn.Sequential(*(GBlock(a, b, v) for a, b in zip(chans[:-1], chans[1:])))
        self.bn = nn.BatchNorm2d(chans[-1], eps=v.bn_eps)
        self.out = _xavier(nn.Conv2d(chans[-1], channels, 3, 1, 1), 1.0, v.zero_bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).view(z.shape[0], -1, self.bottom, self.bottom)
        h = self.blocks(h)
        return torch.tanh(self.out(F.relu(self.bn(h))))


@DISCRIMINATORS.register("resnet")
class Discriminator(nn.Module):
    """SNGAN ResNet discriminator: ``forward(x [B, C, H, W]) -> logits [B]``; with ``return_features`` also the
    pooled features [B, F] fed to the linear head. Spectral norm is applied by gan_bench.ensemble, not here."""

    def __init__(self, in_shape: Sequence[int], *, width: int = 128, variant: Variant = "sngan"):
        super().__init__()
        variant = str(variant)
        channels, res = _check(in_shape, "discriminator", width, variant)
        v = VARIANTS[variant]
        self.pooling = v.pooling
        plan = _D_PLAN[res]
        chans = _scaled(width, 2, [u for u, _ in plan], "discriminator", res)
        blocks, cin = [], channels
        for i, (cout, (_, down)) in enumerate(zip(chans, plan)):
            blocks.append(DBlock(cin, cout, v, downsample=down, optimized=i == 0))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.n_features = cin
        bias = v.head_bias_at_32 or res != 32
        self.head = _xavier(nn.Linear(cin, 1, bias=bias), 1.0, v.zero_bias)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        h = F.relu(self.blocks(x))
        f = h.sum(dim=(2, 3)) if self.pooling == "sum" else h.mean(dim=(2, 3))
        logit = self.head(f).squeeze(-1)
        return (logit, f) if return_features else logit
