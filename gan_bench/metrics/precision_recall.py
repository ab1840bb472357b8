"""Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds (k = 3).

Each set's manifold is the union of balls around its rows with radius = distance to the row's k-th nearest neighbour
in the same set (the row itself excluded). Precision = fraction of fake rows inside the real manifold; recall =
fraction of real rows inside the fake manifold ("inside": distance <= radius). Distances are computed in float64 in
row chunks on the features' device, so memory stays O(chunk x n).

The ``pr`` metric uses Inception pool3 rows (the paper used VGG-16 fc2): a fixed random subset of
``min(n_real, n_samples)`` real rows against all ``n_samples`` generated ones.
"""
from __future__ import annotations

from typing import Any

import torch

from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.extractors.inception import InceptionExtractor
from gan_bench.metrics.inception import BACKBONE
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import HIGHER, ROWS, FakeFeatures, Metric, Result, register_metric

PR_K = 3


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[len(a), len(b)]`` (float64, via the Gram expansion, clamped at 0)."""
    sq = (a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)
    return sq.clamp_min(0).sqrt()


def knn_radii(x: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    if x.shape[0] <= k:
        raise MetricsError(f"k-NN radii need more than k={k} rows, got {x.shape[0]}")
    radii = []
    for start in range(0, x.shape[0], chunk):
        d = _distances(x[start : start + chunk], x)
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = float("inf")  # exclude self
        radii.append(d.kthvalue(k, dim=1).values)
    return torch.cat(radii)


def manifold_coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of ``points`` within ``radii[j]`` of some ``centres[j]``."""
    inside = 0
    for start in range(0, points.shape[0], chunk):
        d = _distances(points[start : start + chunk], centres)
        inside += int((d <= radii).any(dim=1).sum())
    return inside / points.shape[0]


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """``(precision, recall)`` of feature rows ``fake`` against ``real`` (both ``[n, d]``)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        shapes = f"{tuple(real.shape)} and {tuple(fake.shape)}"
        raise MetricsError(f"precision/recall needs [n, d] features of equal d, got {shapes}")
    if k < 1:
        raise MetricsError(f"k must be positive, got {k}")
    real64 = real.to(fake.device, torch.float64)
    fake64 = fake.to(torch.float64)
    precision = manifold_coverage(fake64, real64, knn_radii(real64, k, chunk), chunk)
    recall = manifold_coverage(real64, fake64, knn_radii(fake64, k, chunk), chunk)
    return precision, recall


@register_metric
class PrecisionRecall(Metric):
    """Improved precision and recall with k = :data:`PR_K` nearest-neighbour manifolds."""

    name, keys = "pr", ("precision", "recall")
    directions, labels = {"precision": HIGHER, "recall": HIGHER}, {"precision": "precision", "recall": "recall"}
    extractor, output = InceptionExtractor, "pool3"
    real, fake = ROWS, ROWS

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        return {"n_real": real.n_rows, "n_fake": self.settings.n_samples, "k": PR_K,
                "features": BACKBONE + " (the paper used VGG-16 fc2)", "split": self.settings.split,
                **extractor.protocol()}

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> Result:
        return dict(zip(self.keys, precision_recall(real.rows, fake.rows, k=PR_K)))
