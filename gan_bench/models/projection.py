"""Frozen random projections of a discriminator's input (Neyshabur et al. 2017, the multi-D paper's "RP").

Each discriminator owns a different random projection, stored as a buffer: it is stacked with the
other discriminators' buffers by the ensemble, saved in checkpoints and never trained.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class RandomImageProjection(nn.Module):
    """A fixed random 5x5 convolution C -> C (same size), weights N(0, 1/(25 C))."""

    def __init__(self, channels: int, kernel: int = 5):
        super().__init__()
        self.register_buffer("weight", torch.randn(channels, channels, kernel, kernel) / (kernel * kernel * channels) ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)


class RandomLinearProjection(nn.Module):
    """A fixed random d x d matrix with N(0, 1/d) entries, for vector data."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("weight", torch.randn(dim, dim) / dim ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T
