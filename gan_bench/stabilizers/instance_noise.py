"""Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise, annealed to zero, on every input the
discriminators see (``regularizer.instance_noise``, ``regularizer.instance_noise_anneal``)."""
from __future__ import annotations

import torch
from torch import Tensor


class InstanceNoise:
    """Instance noise: x + σ(t)·N(0, I) on both real and fake discriminator inputs.

    σ(t) = std·max(0, 1 − t/anneal_iters), linear annealing to 0 at ``anneal_iters``
    (``anneal_iters = 0``: constant σ = std).
    """

    def __init__(self, std: float, anneal_iters: int = 0) -> None:
        if std < 0:
            raise ValueError(f"instance noise std must be >= 0, got {std}")
        if anneal_iters < 0:
            raise ValueError(f"anneal_iters must be >= 0, got {anneal_iters}")
        self.std = float(std)
        self.anneal_iters = int(anneal_iters)

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
