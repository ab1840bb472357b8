"""Configurable DCGAN-style convolutional nets with the layer plans of the multi-discriminator paper's code.

Albuquerque, Monteiro et al., "Multi-objective training of GANs with multiple discriminators" (ICML 2019), code
github joaomonteirof/hGAN (``common/discriminators.py``, ``common/generators.py``; read, not copied). Written from
these descriptions:

* ``hgan_conv`` (:class:`ConvDiscriminator`): a stack of Conv(4, stride 2, padding p_i) + LeakyReLU(0.2), a norm
  after every conv but the first (hGAN's ``batch_norm`` flag), then a CONVOLUTIONAL head Conv(C, 1, head_kernel,
  1, head_padding) that must reduce the map to 1x1 (hGAN's sigmoid is the loss's business here: logits out).
  The defaults are the CIFAR-10 64x64 discriminator that sits behind each fixed projection
  (``discriminators/projection=conv_wn``: 3x64x64 -> 1x32x32): 128, 256, 512, 1024 channels down to 2x2, then a
  4x4 head with padding 1 -> 1x1 (hGAN ``Discriminator`` / ``Discriminator_wgan`` with ``[128, 256, 512, 1024]``).
  Without a projection, ``head_padding=0`` on 3x64x64 gives the paper's single-D baselines
  (``Discriminator_noproj`` / ``Discriminator_wgan_noproj``: 4x4 map, 4x4 head without padding).
  Stacked MNIST (``Discriminator_stacked_mnist``, after the 3 -> 3 projection to 14x14): 64, 128, 256 with
  paddings 2, 2, 1 (14 -> 8 -> 5 -> 2), head 4/1/1.
  It differs materially from ``model/discriminator=dcgan`` (which stops at 4x4 and ends in a Linear layer): one more
  strided conv (the 512 -> 1024 one holds 8.4 M of the 11 M parameters of the CIFAR D) and a conv head.
* ``hgan_convt`` (:class:`ConvTGenerator`): a stem to ``stem_size`` x ``stem_size`` x ``num_filters[0]`` (a
  ConvTranspose from the 1x1 noise, hGAN ``Generator``, or a Linear layer + BatchNorm1d, hGAN
  ``Generator_stacked_mnist``), then ConvTranspose(4, stride 2, padding p_i) + norm + ReLU per further entry of
  ``num_filters``, then ConvTranspose(4, 2, 1) to the image channels and tanh. The defaults are the CIFAR-10 64x64
  generator (100 -> 1024 at 4x4 -> 512 -> 256 -> 128 -> 3 at 64x64: the standard DCGAN G with ngf = 128, with conv
  biases). Stacked MNIST: dense stem 2x2x512, 256, 128, 64 with paddings 1, 1, 2 (2 -> 4 -> 8 -> 14 -> 28).

Both also express the DCGAN-28 nets of Chavdarova et al.'s MNIST notebooks (LAGAN-Lookahead_Minimax
``mnist/LA-AltGAN+LA-ExtraGrad.ipynb``: no conv biases, PyTorch's default initialisation, G stem 3x3, D head 3/1/0),
see ``conf/model/lagan_mnist.yaml``.

Initialisation ``init=dcgan``: conv weights N(0, 0.02), biases 0 (hGAN's code), norm layers at PyTorch's default
(weight 1, bias 0); ``init=torch`` keeps PyTorch's defaults everywhere. The discriminator is a pure function of its
parameters (BatchNorm without running statistics), so K copies run as one vectorised ensemble.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from gan_bench.errors import ConfigError
from gan_bench.models.base import DISCRIMINATORS, GENERATORS
from gan_bench.registry import choice

DNorm = choice("HGANDiscriminatorNorm", ("none", "batch"))
GNorm = choice("HGANGeneratorNorm", ("batch", "none"))
Init = choice("HGANInit", ("dcgan", "torch"))
Stem = choice("HGANStem", ("convt", "dense"))


def _image(shape: tuple[int, ...], role: str) -> tuple[int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"the hGAN {role} needs square images [C, H, W]; got shape {shape}")
    return shape[0], shape[1]


def _plan(num_filters: Tuple[int, ...], paddings: Optional[Tuple[int, ...]], n_pad: int) -> tuple[list, list]:
    filters = [int(f) for f in num_filters]
    if not filters or any(f < 1 for f in filters):
        raise ConfigError(f"num_filters={filters} is impossible: give at least one channel count, each >= 1")
    pads = [1] * n_pad if paddings is None else [int(p) for p in paddings]
    if len(pads) != n_pad or any(p < 0 for p in pads):
        raise ConfigError(f"paddings={pads} is impossible: it needs {n_pad} value(s) >= 0 (one per strided layer)")
    return filters, pads


def _init(module: nn.Module, kind: str) -> None:
    if kind != "dcgan":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@DISCRIMINATORS.register("hgan_conv")
class ConvDiscriminator(nn.Module):
    """hGAN's convolutional discriminator: Conv 4/2/p + LeakyReLU(0.2) stack, conv head to one logit."""

    def __init__(self, in_shape: tuple[int, ...], *, num_filters: Tuple[int, ...] = (128, 256, 512, 1024),
                 paddings: Optional[Tuple[int, ...]] = None, head_kernel: int = 4, head_padding: int = 1,
                 norm: DNorm = "none", bias: bool = True, init: Init = "dcgan"):
        super().__init__()
        channels, size = _image(in_shape, "discriminator")
        filters, pads = _plan(num_filters, paddings, len(num_filters))
        layers: list[nn.Module] = []
        c = channels
        for i, (f, p) in enumerate(zip(filters, pads)):
            layers.append(nn.Conv2d(c, f, 4, 2, p, bias=bias))
            if i > 0 and str(norm) == "batch":  # batch statistics only: vmap cannot update running buffers
                layers.append(nn.BatchNorm2d(f, track_running_stats=False))
            layers.append(nn.LeakyReLU(0.2))
            size, c = (size + 2 * p - 4) // 2 + 1, f
            if size < 1:
                raise ConfigError(f"num_filters={filters} with paddings={pads} shrinks {in_shape[-1]} px below 1 px")
        out = size + 2 * head_padding - head_kernel + 1
        if head_kernel < 1 or head_padding < 0 or out != 1:
            raise ConfigError(f"head_kernel={head_kernel}, head_padding={head_padding} on the {size}x{size} map "
                              f"give {out}x{out} outputs; the head must give one logit (1x1)")
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, 1, head_kernel, 1, head_padding, bias=bias)
        self.n_features = c * size * size
        _init(self, str(init))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        h = self.features(x)
        logit = self.head(h).flatten(1).squeeze(-1)
        return (logit, h.flatten(1)) if return_features else logit


@GENERATORS.register("hgan_convt")
class ConvTGenerator(nn.Module):
    """hGAN's DCGAN-style generator: a stem, ConvTranspose 4/2/p + norm + ReLU blocks, ConvTranspose 4/2/1 + tanh."""

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], *,
                 num_filters: Tuple[int, ...] = (1024, 512, 256, 128), stem: Stem = "convt", stem_size: int = 4,
                 paddings: Optional[Tuple[int, ...]] = None, norm: GNorm = "batch", bias: bool = True,
                 init: Init = "dcgan"):
        super().__init__()
        channels, resolution = _image(out_shape, "generator")
        filters, pads = _plan(num_filters, paddings, len(num_filters) - 1)
        if stem_size < 1:
            raise ConfigError(f"stem_size={stem_size} is impossible: it must be >= 1")
        self.z_dim, self.stem_kind, self.stem_size = z_dim, str(stem), stem_size
        batch = str(norm) == "batch"
        if self.stem_kind == "dense":
            self.stem = nn.Sequential(nn.Linear(z_dim, filters[0] * stem_size ** 2, bias=bias),
                                      nn.BatchNorm1d(filters[0] * stem_size ** 2) if batch else nn.Identity(),
                                      nn.ReLU())
        else:
            self.stem = nn.Sequential(nn.ConvTranspose2d(z_dim, filters[0], stem_size, 1, 0, bias=bias),
                                      nn.BatchNorm2d(filters[0]) if batch else nn.Identity(), nn.ReLU())
        layers: list[nn.Module] = []
        size = stem_size
        for c_in, c_out, p in zip(filters[:-1], filters[1:], pads):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, p, bias=bias),
                       nn.BatchNorm2d(c_out) if batch else nn.Identity(), nn.ReLU()]
            size = (size - 1) * 2 - 2 * p + 4
        layers += [nn.ConvTranspose2d(filters[-1], channels, 4, 2, 1, bias=bias), nn.Tanh()]
        size = size * 2
        if size != resolution:
            raise ConfigError(f"num_filters={filters}, stem_size={stem_size}, paddings={pads} generate {size}x{size} "
                              f"images; the data is {resolution}x{resolution}")
        self.body = nn.Sequential(*layers)
        _init(self, str(init))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.stem_kind == "dense":
            h = self.stem(z).view(z.shape[0], -1, self.stem_size, self.stem_size)
        else:
            h = self.stem(z.view(z.shape[0], self.z_dim, 1, 1))
        return self.body(h)
