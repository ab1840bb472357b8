"""Inception Score (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` over 10 splits, mean ± std.

Streaming form: within a split of ``s`` samples, ``E_x KL(p(y|x) || p(y)) = (1/s) sum_x sum_y p log p(y|x)
- sum_y p(y) log p(y)`` with ``p(y) = (1/s) sum_x p(y|x)``, so only a per-split class-probability sum and a scalar are
kept. Splits are consecutive blocks of ``n // splits`` samples; the remainder is dropped, as in the reference code.
The std is numpy's population std (ddof 0) of the split scores, as in the reference code.

The ``is`` metric reads the 1008-way logits of the FID Inception (:class:`InceptionExtractor`); with converted
weights, which have no logit layer, it is unavailable.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.extractors.inception import InceptionExtractor
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import HIGHER, FakeFeatures, Metric, Result, register_metric

IS_SPLITS = 10


class InceptionScoreAccumulator:
    """Accumulates the per-split sums of the Inception Score for ``n_total`` logit rows given in order."""

    def __init__(self, n_total: int, splits: int = 10) -> None:
        if splits < 1 or n_total < splits:
            raise MetricsError(f"IS needs at least one sample per split: n={n_total}, splits={splits}")
        self.splits = splits
        self.split_size = n_total // splits
        self.seen = 0
        self._prob_sum: torch.Tensor | None = None  # [splits, classes]
        self._plogp_sum = torch.zeros(splits, dtype=torch.float64)

    def update(self, logits: torch.Tensor) -> None:
        """Add logits ``[B, classes]`` of the next ``B`` samples."""
        if logits.ndim != 2:
            raise MetricsError(f"logits must be [batch, classes], got shape {tuple(logits.shape)}")
        log_p = torch.log_softmax(logits.detach().to(torch.float64), dim=1).cpu()
        if self._prob_sum is None:
            self._prob_sum = torch.zeros(self.splits, log_p.shape[1], dtype=torch.float64)
        index = torch.arange(self.seen, self.seen + log_p.shape[0]) // self.split_size
        self.seen += log_p.shape[0]
        keep = index < self.splits
        index, log_p = index[keep], log_p[keep]
        p = log_p.exp()
        self._prob_sum.index_add_(0, index, p)
        self._plogp_sum.index_add_(0, index, (p * log_p).sum(dim=1))

    def result(self) -> tuple[float, float]:
        """``(mean, std)`` of the split scores."""
        if self._prob_sum is None or self.seen < self.split_size * self.splits:
            raise MetricsError(f"IS got {self.seen} samples, expected at least {self.split_size * self.splits}")
        p_y = self._prob_sum / self.split_size
        kl = self._plogp_sum / self.split_size - torch.special.xlogy(p_y, p_y).sum(dim=1)
        scores = kl.exp()
        return float(scores.mean()), float(scores.std(unbiased=False))


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score ``(mean, std)`` of a full ``[N, classes]`` logit matrix."""
    acc = InceptionScoreAccumulator(logits.shape[0], splits)
    acc.update(logits)
    mean, std = acc.result()
    if not math.isfinite(mean):
        raise MetricsError("IS is not finite: the logits contain NaN or infinite values")
    return mean, std


@register_metric
class InceptionScore(Metric):
    """IS of ``n_samples`` generated images over :data:`IS_SPLITS` splits, accumulated batch by batch."""

    name, keys = "is", ("is_mean", "is_std")
    directions, labels = {"is_mean": HIGHER, "is_std": None}, {"is_mean": "IS", "is_std": "IS std"}
    extractor, output = InceptionExtractor, "logits"
    min_samples = IS_SPLITS

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        return {"n_fake": self.settings.n_samples, "splits": IS_SPLITS,
                "logits": "pool3 @ fc.weight^T (1008 classes, no bias, as the reference code)",
                "split": self.settings.split, **extractor.protocol()}

    def start(self) -> None:
        self._accumulator = InceptionScoreAccumulator(self.settings.n_samples, IS_SPLITS)

    def update(self, features: torch.Tensor) -> None:
        self._accumulator.update(features)

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> Result:
        return dict(zip(self.keys, self._accumulator.result()))
