"""Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise, annealed to zero, on every input the
discriminators see (``stabilizers.instance_noise.std``, ``stabilizers.instance_noise.anneal_iters``)."""
from __future__ import annotations

import torch
from torch import Tensor

from gan_bench.stabilizers.base import STABILIZERS, InputContext, Stabilizer


@STABILIZERS.register("instance_noise")
class InstanceNoise(Stabilizer):
    """Instance noise: x + σ(t)·N(0, I) on both real and fake discriminator inputs (std = 0: off).

    σ(t) = std·max(0, 1 − t/anneal_iters), linear annealing to 0 at ``anneal_iters``
    (``anneal_iters = 0``: constant σ = std).
    """

    def __init__(self, std: float = 0.0, anneal_iters: int = 0) -> None:
        if std < 0:
            raise ValueError(f"std={std} is impossible: instance noise std must be >= 0 (0 = off)")
        if anneal_iters < 0:
            raise ValueError(f"anneal_iters={anneal_iters} is impossible: anneal_iters must be >= 0 (0 = constant)")
        self.std = float(std)
        self.anneal_iters = int(anneal_iters)
        self.active = self.std > 0

    def sigma(self, iteration: int) -> float:
        if iteration < 0:
            raise ValueError(f"iteration must be >= 0, got {iteration}")
        if self.anneal_iters == 0:
            return self.std
        return self.std * max(0.0, 1.0 - iteration / self.anneal_iters)

    def __call__(self, x: Tensor, iteration: int) -> Tensor:
        sigma = self.sigma(iteration)
        if sigma == 0.0:
            return x
        return x + sigma * torch.randn_like(x)

    def transform(self, x: Tensor, ctx: InputContext) -> Tensor:
        return self(x, ctx.iteration)
