"""The domain classifier (LeNet-5 / ResNet-18, trained by ``gan-bench classifier train``) as a feature extractor.

Outputs: ``logits`` (the log-softmax output, one value per class) and ``penultimate`` (the last hidden layer:
LeNet 84-d, ResNet-18 512-d), both from one forward pass. The weights hash is the sha256 of the classifier file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from gan_bench.files import file_sha256
from gan_bench.metrics.classifier import LAYERS, classifier_outputs, load_classifier
from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.settings import EvalSettings


class ClassifierExtractor(FeatureExtractor):
    """Features of a saved classifier file (``settings.classifier_path``) on images in [-1, 1]."""

    name: ClassVar[str] = "classifier"
    outputs: ClassVar[tuple[str, ...]] = LAYERS

    def __init__(self, model: nn.Module, path: Path, meta: dict[str, Any]) -> None:
        self.model, self.path, self.meta = model, path, meta
        self.weights_hash = file_sha256(path)

    @classmethod
    def load(cls, settings: EvalSettings) -> ClassifierExtractor:
        if settings.classifier_path is None:
            raise MetricsError("the domain classifier needs a classifier file (eval.classifier / classifier_path)")
        path = Path(settings.classifier_path)
        model, meta = load_classifier(path, settings.device)
        return cls(model, path, meta)

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return classifier_outputs(self.model, images)

    def cache_key(self, output: str) -> tuple[str, str]:
        return f"classifier_{self.meta['arch']}_{output}", self.weights_hash

    def protocol(self) -> dict[str, Any]:
        return {"classifier": str(self.path), "classifier_sha256": self.weights_hash, "arch": self.meta["arch"],
                "test_accuracy": self.meta.get("test_accuracy")}
