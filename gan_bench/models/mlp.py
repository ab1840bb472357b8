"""MLP generator and discriminator for the 2-D toys (ReLU MLPs as in the unrolled-GAN experiments)."""
from __future__ import annotations

import torch
import torch.nn as nn

from gan_bench.models.dcgan import generator_norm
from gan_bench.models.projection import RandomLinearProjection


class Generator(nn.Module):
    def __init__(self, z_dim: int, out_dim: int = 2, width: int = 128, depth: int = 2, norm: str = "none"):
        super().__init__()
        self.z_dim = z_dim
        layers: list[nn.Module] = []
        d = z_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), generator_norm(norm, width, spatial=False), nn.ReLU(True)]
            d = width
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, in_dim: int = 2, width: int = 128, depth: int = 2, mbd: tuple[int, int] = (0, 5),
                 projection: bool = False):
        super().__init__()
        self.projection = RandomLinearProjection(in_dim) if projection else nn.Identity()
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        self.features = nn.Sequential(*layers)
        if mbd[0] > 0:
            from gan_bench.models.layers import MinibatchDiscrimination

            self.mbd: nn.Module = MinibatchDiscrimination(d, mbd[0], mbd[1])
            d += mbd[0]
        else:
            self.mbd = nn.Identity()
        self.head = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.features(self.projection(x))
        logit = self.head(self.mbd(f)).squeeze(-1)
        return (logit, f) if return_features else logit
