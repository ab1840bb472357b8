"""Multi-layer perceptrons: the 2-D toys' nets (ReLU MLPs of the unrolled-GAN experiments) and, with ``hidden``,
``activation=leaky_relu``, ``dropout`` and ``tanh``, the multi-discriminator paper's MNIST nets (hGAN
``mnist/hGAN/model.py``: G 100 -> 256 -> 512 -> 1024 -> 784 with LeakyReLU(0.2) and tanh; each D, after its fixed
projection to 512 features, 512 -> 1024 -> 512 -> 256 -> 1 with LeakyReLU(0.2) and dropout 0.3). Images are flattened
on the way in and reshaped on the way out; layers keep ``nn.Linear``'s default initialisation, as in both sources."""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn as nn

from gan_bench.errors import ConfigError
from gan_bench.models.base import DISCRIMINATORS, GENERATORS
from gan_bench.models.dcgan import GeneratorNorm, VBNMixin, generator_norm, minibatch_layer
from gan_bench.registry import choice

Activation = choice("Activation", ("relu", "leaky_relu"))


def _widths(width: int, depth: int, hidden: Optional[List[int]]) -> list[int]:
    widths = list(hidden) if hidden is not None else [width] * depth
    if any(w < 1 for w in widths) or (hidden is None and depth < 0):
        raise ConfigError(f"hidden layer widths {widths} (width={width}, depth={depth}) are impossible: "
                          "each must be >= 1")
    return widths


def _activation(kind: str) -> nn.Module:
    return nn.LeakyReLU(0.2) if kind == "leaky_relu" else nn.ReLU()


@GENERATORS.register("mlp")
class Generator(VBNMixin, nn.Module):
    """MLP generator: ``depth`` hidden layers of ``width`` units (or the widths in ``hidden``), then a linear map to the
    data's size (``tanh=True`` squashes it to [-1, 1] for images)."""

    def __init__(self, z_dim: int, out_shape: tuple[int, ...], width: int = 128, depth: int = 2,
                 hidden: Optional[List[int]] = None, activation: Activation = "relu", norm: GeneratorNorm = "none",
                 tanh: bool = False):
        super().__init__()
        self.z_dim, self.out_shape = z_dim, tuple(out_shape)
        layers: list[nn.Module] = []
        d = z_dim
        for w in _widths(width, depth, hidden):
            layers += [nn.Linear(d, w), generator_norm(str(norm), w, spatial=False), _activation(str(activation))]
            d = w
        layers.append(nn.Linear(d, math.prod(out_shape)))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self._vbn_setup(str(norm), z_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self._run(self.net, z, lambda t: t).view(z.shape[0], *self.out_shape)


@DISCRIMINATORS.register("mlp")
class Discriminator(nn.Module):
    """MLP discriminator: hidden layers (``depth`` x ``width`` or ``hidden``), each followed by its activation and
    ``dropout``; features = the last hidden layer; optional minibatch discrimination; a linear logit."""

    def __init__(self, in_shape: tuple[int, ...], width: int = 128, depth: int = 2, hidden: Optional[List[int]] = None,
                 activation: Activation = "relu", dropout: float = 0.0, minibatch_kernels: int = 0,
                 minibatch_kernel_dim: int = 5):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout={dropout} is impossible: it must lie in [0, 1)")
        layers: list[nn.Module] = []
        d = math.prod(in_shape)
        for w in _widths(width, depth, hidden):
            layers += [nn.Linear(d, w), _activation(str(activation))] + ([nn.Dropout(dropout)] if dropout > 0 else [])
            d = w
        self.features = nn.Sequential(*layers)
        self.mbd, d = minibatch_layer(d, minibatch_kernels, minibatch_kernel_dim)
        self.head = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.features(x.flatten(1))
        logit = self.head(self.mbd(f)).squeeze(-1)
        return (logit, f) if return_features else logit
