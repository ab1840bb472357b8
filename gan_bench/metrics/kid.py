"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel.

``k(x, y) = (x·y / d + 1)^3``; for equal-size sets of ``m`` rows,
``MMD²_u = [sum_{i≠j} k(x_i, x_j) + sum_{i≠j} k(y_i, y_j)] / (m (m-1)) - 2 sum_{i,j} k(x_i, y_j) / m²``,
averaged over ``n_subsets`` random subsets of ``subset_size`` rows drawn without replacement from each set (as in the
reference code); mean ± population std over the subsets. ``subset_size`` larger than a set is reduced to its size.
When that makes every subset the whole of both sets, all subsets are the same pair of sets: KID is computed once and
its std is ``None`` (no spread was measured), rather than a rounding-noise 1e-16 that reads as "exact".

The ``kid`` metric compares Inception pool3 rows: a fixed random subset of ``min(n_real, n_samples)`` real rows
against all ``n_samples`` generated ones.
"""
from __future__ import annotations

from typing import Any

import torch

from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.extractors.inception import InceptionExtractor
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import LOWER, ROWS, FakeFeatures, Metric, Result, register_metric


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(x y^T / d + 1)^3`` for rows of ``x [m, d]`` and ``y [n, d]``."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² between equal-size row sets ``x``, ``y`` with :func:`polynomial_kernel`."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    off_diag = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return off_diag - 2 * k_xy.mean()


def kernel_inception_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float | None, int]:
    """``(kid_mean, kid_std, subset_size_used)`` from feature rows ``real [n_r, d]`` and ``fake [n_f, d]``;
    ``kid_std`` is None when the subsets cannot differ (``subset_size_used`` equals both set sizes)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise MetricsError(f"KID needs [n, d] features of equal d, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if n_subsets < 1:
        raise MetricsError(f"n_subsets must be positive, got {n_subsets}")
    size = min(subset_size, real.shape[0], fake.shape[0])
    if size < 2:
        raise MetricsError(f"KID needs subsets of at least 2 rows, got {size}")
    real64, fake64 = real.to(fake.device, torch.float64), fake.to(torch.float64)
    if size == real.shape[0] == fake.shape[0]:
        return float(mmd2_unbiased(fake64, real64)), None, size
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_subsets):
        i_f = torch.randperm(fake.shape[0], generator=gen)[:size].to(fake.device)
        i_r = torch.randperm(real.shape[0], generator=gen)[:size].to(fake.device)
        values.append(mmd2_unbiased(fake64[i_f], real64[i_r]))
    stacked = torch.stack(values)
    return float(stacked.mean()), float(stacked.std(unbiased=False)), size


@register_metric
class KID(Metric):
    """KID with ``settings.kid_subsets`` subsets of ``settings.kid_subset_size`` rows (reduced to the set sizes)."""

    name, keys = "kid", ("kid_mean", "kid_std")
    directions, labels = {"kid_mean": LOWER, "kid_std": None}, {"kid_mean": "KID", "kid_std": "KID std"}
    extractor, output = InceptionExtractor, "pool3"
    real, fake = ROWS, ROWS

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        s = self.settings
        return {"n_real": real.n_rows, "n_fake": s.n_samples, "n_subsets": s.kid_subsets,
                "subset_size": min(s.kid_subset_size, real.n_rows, s.n_samples), "kernel": "(x.y/d + 1)^3",
                "real_features": str(real.rows_path), "split": s.split, **extractor.protocol()}

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> Result:
        mean, std, _ = kernel_inception_distance(real.rows, fake.rows, n_subsets=self.settings.kid_subsets,
                                                 subset_size=self.settings.kid_subset_size)
        return {"kid_mean": mean, "kid_std": std}
