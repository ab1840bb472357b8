"""Generators and discriminators for every dataset shape (``model`` config group)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from gan_bench.models import dcgan, mlp


class VBNGenerator(nn.Module):
    """Virtual batch normalisation (Salimans et al. 2016): a reference batch of noise, fixed when the generator is
    built (a buffer, so it is checkpointed), is run through G with every call; each sample is normalised with the
    statistics of the reference batch plus itself (gan_bench.models.layers.VirtualBatchNorm)."""

    def __init__(self, inner: nn.Module, z_dim: int, reference_size: int = 64):
        super().__init__()
        self.inner, self.z_dim = inner, z_dim
        self.register_buffer("vbn_reference", torch.randn(reference_size, z_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        from gan_bench.models.layers import vbn_forward

        return vbn_forward(self.inner, self.vbn_reference, z)


def build_generator(cfg: Any, data_shape: tuple[int, ...]) -> nn.Module:
    m = cfg.model
    if m.name == "mlp":
        g: nn.Module = mlp.Generator(m.z_dim, data_shape[0], m.g_width, m.depth, m.g_norm)
    else:
        g = dcgan.Generator(m.z_dim, data_shape[0], data_shape[-1], m.g_width, m.g_norm)
    return VBNGenerator(g, m.z_dim) if m.g_norm == "vbn" else g


def build_discriminator(cfg: Any, data_shape: tuple[int, ...]) -> nn.Module:
    """One discriminator; the ensemble stacks K of them (each built here, so each has its own initialisation)."""
    m = cfg.model
    mbd = (m.minibatch_discrimination.b, m.minibatch_discrimination.c)
    projection = cfg.discriminators.projection == "random"
    if m.name == "mlp":
        return mlp.Discriminator(data_shape[0], m.d_width, m.depth, mbd=mbd, projection=projection)
    return dcgan.Discriminator(data_shape[0], data_shape[-1], m.d_width, m.d_norm, mbd=mbd, projection=projection)
