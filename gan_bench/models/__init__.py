"""Generators and discriminators (config ``model``), their K-discriminator ensemble and input projections.

Builders instantiate the ``_target_`` nodes of the config; see :mod:`gan_bench.models.base` for the interface a
class must follow to be used as ``model.generator`` or ``model.discriminator``.
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from gan_bench.build import instantiate
from gan_bench.models import dcgan, hgan, mlp, resnet  # noqa: F401  (register the built-in options)
from gan_bench.models.base import DISCRIMINATORS, GENERATORS
from gan_bench.models.ensemble import DiscriminatorEnsemble
from gan_bench.models.projection import PROJECTIONS, Identity, Projected


def build_generator(cfg: Any, data_shape: tuple[int, ...]) -> nn.Module:
    return instantiate(cfg.model.generator, "model.generator", group=GENERATORS, z_dim=cfg.model.z_dim,
                       out_shape=tuple(data_shape))


def build_discriminator(cfg: Any, data_shape: tuple[int, ...]) -> nn.Module:
    """One discriminator behind its own projection (each call: a new initialisation and a new random projection)."""
    projection = instantiate(cfg.discriminators.projection, "discriminators.projection", group=PROJECTIONS,
                             in_shape=tuple(data_shape))
    d = instantiate(cfg.model.discriminator, "model.discriminator", group=DISCRIMINATORS,
                    in_shape=tuple(projection.out_shape))
    return d if isinstance(projection, Identity) else Projected(projection, d)


def build_discriminators(cfg: Any, data_shape: tuple[int, ...]) -> DiscriminatorEnsemble:
    """The K discriminators as one ensemble (evaluated as ``discriminators.layout`` says), their interface checked on a
    probe batch."""
    return DiscriminatorEnsemble.build(lambda: build_discriminator(cfg, data_shape), cfg.discriminators.count,
                                       spectral_norm=cfg.discriminators.spectral_norm, in_shape=tuple(data_shape),
                                       layout=str(cfg.discriminators.get("layout", "auto")))


__all__ = ["DISCRIMINATORS", "DiscriminatorEnsemble", "GENERATORS", "PROJECTIONS", "build_discriminator",
           "build_discriminators", "build_generator"]
