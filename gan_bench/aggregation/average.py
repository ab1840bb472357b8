"""AVG: the mean (or, as in the multi-discriminator paper's code, the sum) of the K generator losses."""
from __future__ import annotations

import torch
from torch import Tensor

from gan_bench.aggregation.base import AGGREGATIONS, Aggregation, Logs, check_reduction


@AGGREGATIONS.register("avg")
class Average(Aggregation):
    """``L = (1/K) sum_k l_k`` (reduction "mean") or ``sum_k l_k`` (reduction "sum", as in the paper's code)."""

    def __init__(self, reduction: str = "mean", k: int | None = None) -> None:
        super().__init__(k)
        self.reduction = check_reduction(reduction)

    def loss(self, losses: Tensor) -> tuple[Tensor, Logs]:
        self._check_losses(losses)
        total = losses.sum() if self.reduction == "sum" else losses.mean()
        return total, {"weights": torch.full_like(losses.detach(), 1.0 / losses.numel())}
