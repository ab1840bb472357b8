"""Generators and discriminators for every dataset shape (``model`` config group)."""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from gan_bench.models import dcgan, mlp


def build_generator(cfg: Any, data_shape: tuple[int, ...]) -> nn.Module:
    m = cfg.model
    if m.name == "mlp":
        return mlp.Generator(m.z_dim, data_shape[0], m.g_width, m.depth, m.g_norm)
    return dcgan.Generator(m.z_dim, data_shape[0], data_shape[-1], m.g_width, m.g_norm)


def build_discriminator(cfg: Any, data_shape: tuple[int, ...]) -> nn.Module:
    """One discriminator; the ensemble stacks K of them (each built here, so each has its own initialisation)."""
    m = cfg.model
    mbd = (m.minibatch_discrimination.b, m.minibatch_discrimination.c)
    projection = cfg.discriminators.projection == "random"
    if m.name == "mlp":
        return mlp.Discriminator(data_shape[0], m.d_width, m.depth, mbd=mbd, projection=projection)
    return dcgan.Discriminator(data_shape[0], data_shape[-1], m.d_width, m.d_norm, mbd=mbd, projection=projection)
