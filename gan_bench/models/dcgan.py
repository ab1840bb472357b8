"""DCGAN (Radford et al. 2016) generator and discriminator at any resolution 4*2^n or 7*2^n (8..256, 28).

G: z -> ConvT to s0 x s0 -> (ConvT 4/2/1, norm, ReLU) x (n-1) -> ConvT -> tanh, BatchNorm by default.
D: (Conv 4/2/1, LeakyReLU 0.2) down to s0 x s0 -> features -> [minibatch discrimination] -> linear logit.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from gan_bench.errors import ConfigError
from gan_bench.models.base import DISCRIMINATORS, GENERATORS
from gan_bench.registry import choice

GeneratorNorm = choice("GeneratorNorm", ("batch", "vbn", "none"))
DiscriminatorNorm = choice("DiscriminatorNorm", ("none", "batch", "layer"))
VBN_REFERENCE_SIZE = 64


def _base_size(resolution: int) -> tuple[int, int]:
    for s0 in (4, 7):
        n, r = 0, resolution
        while r > s0 and r % 2 == 0:
            r //= 2
            n += 1
        if r == s0 and n >= 1:
            return s0, n
    raise ConfigError(f"DCGAN needs a resolution of 4*2^n or 7*2^n (8, 16, 28, 32, 64, ...), got {resolution}")


def _image_shape(shape: tuple[int, ...], what: str) -> tuple[int, int]:
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"the DCGAN {what} needs square images [C, H, W]; the data has shape {tuple(shape)} "
                          "(2-D points need model=mlp)")
    return shape[0], shape[-1]


def generator_norm(kind: str, c: int, spatial: bool = True) -> nn.Module:
    """The generator's normalisation layer: BatchNorm (2-D maps or 1-D features), virtual batch norm, or none."""
    if kind == "batch":
        return nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c)
    if kind == "vbn":
        from gan_bench.models.virtual_batch_norm import VirtualBatchNorm

        return VirtualBatchNorm(c)
    return nn.Identity()


def _d_norm(kind: str, c: int) -> nn.Module:
    if kind == "batch":  # batch statistics only: running buffers cannot be updated inside vmap
        return nn.BatchNorm2d(c, track_running_stats=False)
    if kind == "layer":
        return nn.GroupNorm(1, c)
    return nn.Identity()


def init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class VBNMixin:
    """Virtual batch normalisation (Salimans et al. 2016) for a generator: a reference batch of noise, fixed when the
    generator is built (a buffer, so it is checkpointed), runs through the network with every call; each sample is
    normalised with the statistics of the reference batch plus itself."""

    def _vbn_setup(self, norm: str, z_dim: int) -> None:
        self.vbn = norm == "vbn"
        if self.vbn:
            self.register_buffer("vbn_reference", torch.randn(VBN_REFERENCE_SIZE, z_dim))

    def _run(self, net: nn.Module, z: torch.Tensor, reshape) -> torch.Tensor:
        if not self.vbn:
            return net(reshape(z))
        from gan_bench.models.virtual_batch_norm import vbn_forward

        return vbn_forward(net, reshape(self.vbn_reference), reshape(z))


@GENERATORS.register("dcgan")
class Generator(VBNMixin, nn.Module):
    """DCGAN generator: ``width`` channels in the last block (ngf), doubling towards the input."""

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int = 64, norm: GeneratorNorm = "batch"):
        super().__init__()
        channels, resolution = _image_shape(out_shape, "generator")
        s0, n = _base_size(resolution)
        if width < 1:
            raise ConfigError(f"width={width} is impossible: it must be >= 1")
        self.z_dim = z_dim
        c = width * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, s0, 1, 0, bias=norm == "none"), generator_norm(norm, c),
                                   nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=norm == "none"), generator_norm(norm, c // 2),
                       nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan(self)
        self._vbn_setup(str(norm), z_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self._run(self.net, z, lambda t: t.view(t.shape[0], self.z_dim, 1, 1))


def minibatch_layer(n_features: int, kernels: int, kernel_dim: int) -> tuple[nn.Module, int]:
    """Minibatch discrimination on ``n_features`` (``kernels`` = B, 0 = off) and the feature count after it."""
    if kernels < 0 or kernel_dim < 1:
        raise ConfigError(f"minibatch_kernels={kernels}, minibatch_kernel_dim={kernel_dim} are impossible: "
                          "kernels >= 0 (0 = off) and kernel_dim >= 1")
    if kernels == 0:
        return nn.Identity(), n_features
    from gan_bench.models.minibatch_discrimination import MinibatchDiscrimination

    return MinibatchDiscrimination(n_features, kernels, kernel_dim), n_features + kernels


@DISCRIMINATORS.register("dcgan")
class Discriminator(nn.Module):
    """DCGAN discriminator: ``width`` channels in the first block (ndf), doubling with depth; LeakyReLU(0.2)."""

    def __init__(self, in_shape: tuple[int, ...], width: int = 64, norm: DiscriminatorNorm = "none",
                 minibatch_kernels: int = 0, minibatch_kernel_dim: int = 5):
        super().__init__()
        channels, resolution = _image_shape(in_shape, "discriminator")
        s0, n = _base_size(resolution)
        if width < 1:
            raise ConfigError(f"width={width} is impossible: it must be >= 1")
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(n - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=norm == "none"), _d_norm(str(norm), 2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.mbd, n_features = minibatch_layer(c * s0 * s0, minibatch_kernels, minibatch_kernel_dim)
        self.head = nn.Linear(n_features, 1)
        init_dcgan(self)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.features(x)
        logit = self.head(self.mbd(f)).squeeze(-1)
        return (logit, f) if return_features else logit
