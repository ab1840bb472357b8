"""GMAN and GMAN* (Durugkar, Gemp & Mahadevan, ICLR 2017): a softmax-weighted mean of the K generator losses."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_bench.aggregation.base import AGGREGATIONS, Aggregation, Logs, check_reduction
from gan_bench.errors import ConfigError

#: GMAN*: the generator minimises ``softmax-mean - GMAN_AUTO_PENALTY * lam`` (Durugkar et al. 2017)
GMAN_AUTO_PENALTY = 1e-3


def softmax_mean(losses: Tensor, lam: Tensor | float, scale: float) -> tuple[Tensor, Tensor]:
    """GMAN's softmax mean ``scale * sum_k w_k l_k`` with ``w = softmax(lam * l)`` computed from the
    DETACHED losses: no gradient flows through the weights into ``l`` (it may flow into ``lam``).
    Returns (loss, weights)."""
    weights = torch.softmax(lam * losses.detach(), dim=0)
    return scale * (weights * losses).sum(), weights


@AGGREGATIONS.register("gman")
class GMAN(Aggregation):
    """GMAN: ``L = sum_k softmax(lam * l)_k l_k``, weights treated as constants. ``lam = 0`` is the mean, ``lam -> inf``
    the max. Reduction "sum" multiplies by K (``lam = 0`` is then the sum)."""

    def __init__(self, lam: float = 0.8, reduction: str = "mean", k: int | None = None) -> None:
        super().__init__(k)
        if not (math.isfinite(lam) and lam >= 0):
            raise ConfigError(f"lam={lam} is impossible: GMAN needs a finite lam >= 0 (0 = mean, large = max)")
        self.lam = lam
        self.reduction = check_reduction(reduction)

    def loss(self, losses: Tensor) -> tuple[Tensor, Logs]:
        self._check_losses(losses)
        scale = float(losses.numel()) if self.reduction == "sum" else 1.0
        total, weights = softmax_mean(losses, self.lam, scale)
        return total, {"weights": weights.detach(), "lam": losses.detach().new_full((), self.lam)}


@AGGREGATIONS.register("gman_auto")
class GMANAuto(Aggregation):
    """GMAN*: the generator also learns ``lam >= 0`` and minimises ``sum_k softmax(lam * l)_k l_k - 0.001 * lam``; the
    penalty pushes ``lam`` up (towards the max). ``lam = softplus(raw)`` with ``raw`` an ``nn.Parameter`` (trained with
    the generator). The weights depend on ``lam`` (gradient flows to it) but use the detached losses, as in GMAN."""

    def __init__(self, lam: float = 0.8, reduction: str = "mean", k: int | None = None) -> None:
        super().__init__(k)
        if not (math.isfinite(lam) and lam > 0):
            raise ConfigError(f"lam={lam} is impossible: GMAN* needs a finite initial lam > 0 "
                              "(lam = softplus(raw) is learnt)")
        self.reduction = check_reduction(reduction)
        # inverse softplus: raw = lam + log(1 - exp(-lam))
        self.raw_lam = nn.Parameter(torch.tensor(lam + math.log(-math.expm1(-lam))))

    @property
    def lam(self) -> Tensor:
        return F.softplus(self.raw_lam)

    def loss(self, losses: Tensor) -> tuple[Tensor, Logs]:
        self._check_losses(losses)
        scale = float(losses.numel()) if self.reduction == "sum" else 1.0
        lam = self.lam.to(losses.dtype)
        total, weights = softmax_mean(losses, lam, scale)
        return total - GMAN_AUTO_PENALTY * lam, {"weights": weights.detach(), "lam": lam.detach()}
