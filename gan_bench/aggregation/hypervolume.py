"""Hypervolume maximisation (Albuquerque, Monteiro et al., ICML 2019, eq. 6)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gan_bench.aggregation.base import AGGREGATIONS, Aggregation, Logs
from gan_bench.errors import ConfigError


@AGGREGATIONS.register("hv")
class Hypervolume(Aggregation):
    """``L = -sum_k log(eta - l_k)``, so ``dL/dl_k = 1 / (eta - l_k)``: losses closer to the nadir point get larger
    weights. The nadir ``eta = max(delta * max_k l_k, eps)`` (``delta > 1``) is recomputed every call from the DETACHED
    losses and is a constant for autograd; the ``max(., eps)`` keeps ``eta > l_k`` also when losses are zero or negative
    (hinge / Wasserstein), where ``delta * max_k l_k`` would lie at or below the largest loss.

    ``normalized=True`` divides the loss by the detached ``sum_j 1/(eta - l_j)``, so the weights on the ``grad l_k``
    sum to 1, as one version of the authors' code does (hGAN ``cifar10/hGAN/train_loop.py`` at ae54bdd); their MNIST
    and 64x64 CIFAR-10 loops (``mnist/hGAN``, ``cifar10_64/hGAN``) and the paper's formula do not
    (``normalized=False``, larger by that factor, which matters with SGD and changes Adam's dynamics). Logs: ``eta``
    and the normalised weights."""

    def __init__(self, delta: float = 1.5, eps: float = 1e-6, normalized: bool = False, k: int | None = None) -> None:
        super().__init__(k)
        if not (math.isfinite(delta) and delta > 1):
            raise ConfigError(f"delta={delta} is impossible: hypervolume needs delta > 1 so that the nadir point "
                              f"eta = delta * max_k l_k exceeds every loss")
        if not eps > 0:
            raise ConfigError(f"eps={eps} is impossible: it must be > 0")
        self.delta, self.eps, self.normalized = delta, eps, normalized

    def nadir(self, losses: Tensor) -> Tensor:
        """``eta = max(delta * max_k l_k, eps)`` from the detached losses."""
        return torch.clamp(self.delta * losses.detach().max(), min=self.eps)

    def loss(self, losses: Tensor) -> tuple[Tensor, Logs]:
        self._check_losses(losses)
        eta = self.nadir(losses)
        total = -torch.log(eta - losses).sum()
        inverse_gaps = 1.0 / (eta - losses.detach())
        if self.normalized:
            total = total / inverse_gaps.sum()
        return total, {"eta": eta, "weights": inverse_gaps / inverse_gaps.sum()}
