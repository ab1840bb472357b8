"""The interface every feature extractor implements: images (or 2-D points) in, named feature rows out.

A metric names the extractor class it needs and one of its ``outputs``; the Evaluator loads each extractor class
once (:meth:`FeatureExtractor.load`) however many metrics use it, and sends each batch through it once.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from gan_bench.metrics.settings import EvalSettings


class FeatureExtractor:
    """A network (or none) that maps a batch of samples in [-1, 1] to feature tensors, one per output name.

    Subclasses set ``name`` (used in cache file names and messages) and ``outputs``, and implement :meth:`load`
    and :meth:`features`. ``weights_hash`` identifies the weights, so that cached real-data references are never
    reused across different networks.
    """

    name: ClassVar[str]
    outputs: ClassVar[tuple[str, ...]]
    weights_hash: str

    @classmethod
    def load(cls, settings: EvalSettings) -> FeatureExtractor:
        """The extractor for these settings, on ``settings.device`` (raise MetricsError when it cannot be built)."""
        raise NotImplementedError

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{output: tensor [B, ...]}`` for a batch of ``B`` samples in [-1, 1]; an unavailable output is absent."""
        raise NotImplementedError

    def cache_key(self, output: str) -> tuple[str, str]:
        """``(backbone, weights hash)``: the part of a real-reference cache file name that names the features."""
        return f"{self.name}_{output}", self.weights_hash

    def protocol(self) -> dict[str, Any]:
        """How the features are computed (backbone, weights, input handling), recorded with every metric value."""
        return {}

    def unavailable_reason(self, output: str) -> str | None:
        """Why ``output`` cannot be computed with the loaded weights (None when it can)."""
        return None
