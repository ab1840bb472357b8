"""The identity "extractor": the generated samples themselves, for metrics defined on raw points (2-D mode coverage)."""
from __future__ import annotations

from typing import ClassVar

import torch

from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.settings import EvalSettings


class RawSamples(FeatureExtractor):
    """``{"samples": rows}``: each sample as one float row (2-D points as they are, images flattened)."""

    name: ClassVar[str] = "raw"
    outputs: ClassVar[tuple[str, ...]] = ("samples",)
    weights_hash = "none"

    @classmethod
    def load(cls, settings: EvalSettings) -> RawSamples:
        return cls()

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"samples": images.float().flatten(1)}
