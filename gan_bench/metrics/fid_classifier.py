"""Domain-classifier FID (``fid_classifier``): the Fréchet distance on features of a classifier of the dataset.

Inception features mean little for 28x28 digits; the multi-discriminator GAN papers use a classifier trained on the
domain instead (see :mod:`gan_bench.metrics.classifier`). ``classifier_layer`` picks its ``logits`` (log-softmax,
one per class) or ``penultimate`` features.
"""
from __future__ import annotations

from typing import Any

from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.extractors.classifier import ClassifierExtractor
from gan_bench.metrics.fid import FrechetMetric
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import LOWER, register_metric
from gan_bench.metrics.settings import EvalSettings


@register_metric
class ClassifierFID(FrechetMetric):
    """FID on the domain classifier's ``settings.classifier_layer`` features of all real and ``n_samples`` fakes."""

    name, keys = "fid_classifier", ("fid_classifier",)
    directions, labels = {"fid_classifier": LOWER}, {"fid_classifier": "FID (classifier)"}
    extractor, output = ClassifierExtractor, "logits"

    def __init__(self, settings: EvalSettings) -> None:
        super().__init__(settings)
        if settings.classifier_layer not in ClassifierExtractor.outputs:
            valid = ", ".join(ClassifierExtractor.outputs)
            raise MetricsError(f"unknown classifier layer {settings.classifier_layer!r}; valid: {valid}")
        self.output = settings.classifier_layer

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        return {**super().protocol(extractor, real), "layer": self.output}
