"""Frozen random projections of a discriminator's input (config group ``discriminators/projection``).

Neyshabur et al. (2017) and the multi-discriminator paper (Albuquerque, Monteiro et al., ICML 2019) give each
discriminator its own fixed random projection of the input, so that the K discriminators see K different views.
Each projection is built once per discriminator (its own random draw), stored as buffers (stacked with the other
discriminators' by the ensemble, saved in checkpoints) and never trained. A projection takes the input shape and
exposes ``out_shape``, the shape the discriminator behind it is built for.

* ``none`` (:class:`Identity`);
* ``random`` (:class:`RandomProjection`): a same-size map, a 5x5 convolution C -> C with N(0, 1/(25 C)) weights for
  images, a d x d N(0, 1/d) matrix for vectors;
* ``linear_wn`` (:class:`WeightNormLinear`): the paper's MNIST form (hGAN ``mnist/hGAN/model.py``): a weight-normalised
  linear map of the flattened image to 512 features with gain 1 (each row of W has unit norm) and a bias, both from
  ``nn.Linear``'s default initialisation and never trained;
* ``conv_wn`` (:class:`WeightNormConv`): the paper's image form (hGAN ``common/discriminators.py``): a weight-normalised
  convolution C -> ``out_channels`` (1 for CIFAR-10 64x64, 3 for Stacked MNIST), kernel 8, stride 2, padding 3 (halves
  the resolution), no bias, gain 1, never trained.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_bench.errors import ConfigError
from gan_bench.registry import Registry

PROJECTIONS = Registry("discriminators/projection", runtime=("in_shape",))


@PROJECTIONS.register("none")
class Identity(nn.Module):
    """No projection: the discriminator sees the input itself."""

    def __init__(self, in_shape: tuple[int, ...]):
        super().__init__()
        self.out_shape = tuple(in_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@PROJECTIONS.register("random")
class RandomProjection(nn.Module):
    """A fixed random map of the same size: 5x5 convolution C -> C for images, d x d matrix for vectors."""

    def __init__(self, in_shape: tuple[int, ...], kernel: int = 5):
        super().__init__()
        self.out_shape = tuple(in_shape)
        if len(in_shape) == 3:
            c = in_shape[0]
            self.register_buffer("weight", torch.randn(c, c, kernel, kernel) / (kernel * kernel * c) ** 0.5)
        else:
            d = in_shape[0]
            self.register_buffer("weight", torch.randn(d, d) / d ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.dim() == 4:
            return F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)
        return x @ self.weight.T


def _unit_rows(w: torch.Tensor) -> torch.Tensor:
    """Weight normalisation with gain 1: every output unit's weight vector scaled to unit norm."""
    return w / w.flatten(1).norm(dim=1).view(-1, *([1] * (w.dim() - 1)))


@PROJECTIONS.register("linear_wn")
class WeightNormLinear(nn.Module):
    """The multi-discriminator paper's MNIST projection: fixed weight-normalised linear, flattened input -> features."""

    def __init__(self, in_shape: tuple[int, ...], out_features: int = 512):
        super().__init__()
        if out_features < 1:
            raise ConfigError(f"out_features={out_features} is impossible: it must be >= 1")
        layer = nn.Linear(math.prod(in_shape), out_features)  # nn.Linear's default initialisation, as the paper's code
        self.register_buffer("weight", _unit_rows(layer.weight.detach()))
        self.register_buffer("bias", layer.bias.detach().clone())
        self.out_shape = (out_features,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight, self.bias)


@PROJECTIONS.register("conv_wn")
class WeightNormConv(nn.Module):
    """The multi-discriminator paper's image projection: fixed weight-normalised conv C -> out_channels, 8/2/3."""

    def __init__(self, in_shape: tuple[int, ...], out_channels: int = 1, kernel: int = 8, stride: int = 2,
                 padding: int = 3):
        super().__init__()
        if len(in_shape) != 3:
            raise ConfigError(f"conv_wn projects images [C, H, W]; the data here has shape {tuple(in_shape)}: "
                              "use discriminators/projection=linear_wn or random")
        if out_channels < 1:
            raise ConfigError(f"out_channels={out_channels} is impossible: it must be >= 1")
        c, h, w = in_shape
        layer = nn.Conv2d(c, out_channels, kernel, stride, padding, bias=False)
        self.register_buffer("weight", _unit_rows(layer.weight.detach()))
        self.stride, self.padding = stride, padding
        size = lambda n: (n + 2 * padding - kernel) // stride + 1  # noqa: E731
        self.out_shape = (out_channels, size(h), size(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)


class Projected(nn.Module):
    """A discriminator behind its frozen projection: ``D(P(x))``, with D's ``return_features`` passed through."""

    def __init__(self, projection: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.projection, self.discriminator = projection, discriminator

    def forward(self, x: torch.Tensor, return_features: bool = False):
        return self.discriminator(self.projection(x), return_features=return_features)
