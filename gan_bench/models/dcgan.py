"""DCGAN (Radford et al. 2016) generator and discriminator at any resolution 4*2^n or 7*2^n (8..256, 28).

G: z -> ConvT to s0 x s0 -> (ConvT 4/2/1, norm, ReLU) x (n-1) -> ConvT -> tanh, BatchNorm by default.
D: (Conv 4/2/1, LeakyReLU 0.2) down to s0 x s0 -> features -> [minibatch discrimination] -> linear logit.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from gan_bench.models.projection import RandomImageProjection


def _base_size(resolution: int) -> tuple[int, int]:
    for s0 in (4, 7):
        n, r = 0, resolution
        while r > s0 and r % 2 == 0:
            r //= 2
            n += 1
        if r == s0 and n >= 1:
            return s0, n
    raise ValueError(f"DCGAN needs a resolution of 4*2^n or 7*2^n (8, 16, 28, 32, 64, ...), got {resolution}")


def generator_norm(kind: str, c: int, spatial: bool = True) -> nn.Module:
    """The generator's normalisation layer: BatchNorm (2-D maps or 1-D features), virtual batch norm, or none."""
    if kind == "batch":
        return nn.BatchNorm2d(c) if spatial else nn.BatchNorm1d(c)
    if kind == "vbn":
        from gan_bench.models.layers import VirtualBatchNorm

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


class Generator(nn.Module):
    def __init__(self, z_dim: int, channels: int, resolution: int, width: int = 64, norm: str = "batch"):
        super().__init__()
        s0, n = _base_size(resolution)
        self.z_dim = z_dim
        c = width * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, s0, 1, 0, bias=norm == "none"), generator_norm(norm, c), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=norm == "none"), generator_norm(norm, c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, width: int = 64, norm: str = "none",
                 mbd: tuple[int, int] = (0, 5), projection: bool = False):
        super().__init__()
        s0, n = _base_size(resolution)
        self.projection = RandomImageProjection(channels) if projection else nn.Identity()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for _ in range(n - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=norm == "none"), _d_norm(norm, 2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_features = c * s0 * s0
        if mbd[0] > 0:
            from gan_bench.models.layers import MinibatchDiscrimination

            self.mbd: nn.Module = MinibatchDiscrimination(n_features, mbd[0], mbd[1])
            n_features += mbd[0]
        else:
            self.mbd = nn.Identity()
        self.head = nn.Linear(n_features, 1)
        init_dcgan(self)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.features(self.projection(x))
        logit = self.head(self.mbd(f)).squeeze(-1)
        return (logit, f) if return_features else logit
