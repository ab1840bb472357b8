"""Mode coverage on 2-D Gaussian mixtures (Metz et al. 2017, unrolled GAN; Srivastava et al. 2017, VEEGAN).

* A sample is *high quality* when it lies within ``n_std`` (3) standard deviations of its nearest mode centre.
* A mode is *covered* when at least ``min_count`` high-quality samples have it as nearest centre. The default 1 is
  VEEGAN's rule ("modes whose mean is nearest to at least one high-quality sample"); PacGAN's stricter variant uses
  20 of 2,500 samples.
* ``mode_kl = KL(h || uniform) = sum_m h_m log(M h_m)``, ``h`` the histogram of high-quality samples over their nearest
  modes (``None`` when there are no high-quality samples, since ``h`` is then undefined).

The ``modes`` metric applies to the 2-D mixtures only (ring8, grid25): it reads the generated points themselves.
"""
from __future__ import annotations

from typing import Any

import torch

from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.extractors.samples import RawSamples
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import HIGHER, LOWER, POINTS, ROWS, FakeFeatures, Metric, Result, register_metric
from gan_bench.metrics.settings import EvalSettings


def mode_metrics(
    samples: torch.Tensor, centres: torch.Tensor, std: float, *, n_std: float = 3.0, min_count: int = 1
) -> dict[str, float | int | None]:
    """``{"modes_covered": int, "high_quality": fraction in [0, 1], "mode_kl": float | None}``."""
    if samples.ndim != 2 or samples.shape[1] != 2 or samples.shape[0] == 0:
        raise MetricsError(f"samples must be non-empty 2-D points [N, 2], got shape {tuple(samples.shape)}")
    if centres.ndim != 2 or centres.shape[1] != 2 or centres.shape[0] == 0:
        raise MetricsError(f"mode centres must be [M, 2], got shape {tuple(centres.shape)}")
    if not std > 0 or min_count < 1:
        raise MetricsError(f"need std > 0 and min_count >= 1, got std={std}, min_count={min_count}")
    x = samples.detach().to(torch.float64)
    c = centres.detach().to(x.device, torch.float64)
    if not torch.isfinite(x).all():
        raise MetricsError("samples contain NaN or infinite values")
    distance, nearest = torch.cdist(x, c).min(dim=1)
    high_quality = distance <= n_std * std
    counts = torch.bincount(nearest[high_quality], minlength=c.shape[0]).to(torch.float64)
    n_hq = int(counts.sum())
    mode_kl = None
    if n_hq > 0:
        h = counts / n_hq
        mode_kl = float(torch.special.xlogy(h, h * c.shape[0]).sum())
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "high_quality": n_hq / x.shape[0],
        "mode_kl": mode_kl,
    }


@register_metric
class ModeCoverage(Metric):
    """Mode coverage of ``n_samples`` generated points around ``settings.mode_centres`` (std ``settings.mode_std``)."""

    name, keys = "modes", ("modes_covered", "high_quality", "mode_kl")
    directions = {"modes_covered": HIGHER, "high_quality": HIGHER, "mode_kl": LOWER}
    labels = {"modes_covered": "modes", "high_quality": "high quality", "mode_kl": "mode KL"}
    data = POINTS
    extractor, output = RawSamples, "samples"
    fake = ROWS

    def __init__(self, settings: EvalSettings) -> None:
        super().__init__(settings)
        if settings.mode_centres is None or settings.mode_std is None:
            raise MetricsError("the modes metric needs mode_centres [M, 2] and mode_std")

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        n = self.settings.modes_min_count
        covered = ">= 1 high-quality sample (VEEGAN)" if n == 1 else f">= {n} high-quality samples"
        return {"n_fake": self.settings.n_samples, "n_modes": int(self.settings.mode_centres.shape[0]),
                "std": self.settings.mode_std, "high_quality": "within 3 std of the nearest centre",
                "covered": covered}

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> Result:
        s = self.settings
        return mode_metrics(fake.rows, s.mode_centres, s.mode_std, min_count=s.modes_min_count)
