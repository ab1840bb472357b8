"""Mode coverage on Stacked MNIST (``modes_stacked``): Metz et al. 2017, VEEGAN (Srivastava et al. 2017), PacGAN.

Each generated 3-channel image is split into its R, G and B channels; each channel goes through the MNIST classifier
of ``gan-bench classifier train dataset=mnist`` (``eval.classifier``), resized to MNIST's 28x28 first when it is
another size, so that it reaches the classifier as its training images did. The three argmax digits give the mode id
``100 d_R + 10 d_G + d_B`` (1,000 modes, as the labels of ``dataset=stacked_mnist``). Over ``n_samples`` samples:

* ``modes_covered_stacked``: the number of modes with at least one sample (the references' rule);
* ``mode_kl_stacked = KL(p || uniform) = sum_m p_m log(1000 p_m)`` (natural log), ``p`` the histogram of the
  generated modes: 0 when they are uniform, ``log(1000) = 6.91`` when every sample has the same mode.

The references evaluate 26,000 samples (:data:`REFERENCE_N_SAMPLES`); fewer cover fewer modes by chance alone and
raise the KL (about 999 / (2 n) for uniform modes), so a smaller ``eval.n_samples`` is warned about.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gan_bench.data.stacked_mnist import N_MODES, mode_ids
from gan_bench.files import file_sha256
from gan_bench.metrics.classifier import load_classifier
from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import HIGHER, IMAGES, LOWER, FakeFeatures, Metric, Result, register_metric
from gan_bench.metrics.settings import EvalSettings

REFERENCE_N_SAMPLES = 26_000  # Metz et al. 2017, VEEGAN and PacGAN
DIGIT_SIZE = 28  # MNIST's size: the classifier was trained on 28x28 digits


def stacked_mode_metrics(counts: torch.Tensor) -> dict[str, int | float]:
    """``{"modes_covered_stacked", "mode_kl_stacked"}`` of a histogram ``counts`` ``[1000]`` of generated modes."""
    if counts.shape != (N_MODES,) or counts.sum() <= 0:
        raise MetricsError(f"need a histogram of {N_MODES} mode counts with at least one sample, got shape "
                           f"{tuple(counts.shape)}")
    c = counts.detach().cpu().to(torch.float64)
    p = c / c.sum()
    return {"modes_covered_stacked": int((c > 0).sum()),
            "mode_kl_stacked": float(torch.special.xlogy(p, p * N_MODES).sum())}


@torch.no_grad()
def channel_digits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The classifier's digit ``[B, 3]`` of each channel of images ``[B, 3, H, W]`` in [-1, 1]."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise MetricsError(f"modes_stacked reads 3-channel images [B, 3, H, W], got shape {tuple(images.shape)}")
    b, _, h, w = images.shape
    x = images.float().reshape(b * 3, 1, h, w)
    if (h, w) != (DIGIT_SIZE, DIGIT_SIZE):
        x = F.interpolate(x, size=(DIGIT_SIZE, DIGIT_SIZE), mode="bilinear", align_corners=False,
                          antialias=h > DIGIT_SIZE)
    return model(x).argmax(1).reshape(b, 3)


def _check_digit_classifier(path: Path, meta: dict[str, Any]) -> None:
    """The classifier must read 1-channel digits into 10 classes and, when it records its data, have learned MNIST."""
    if meta.get("in_channels") != 1 or meta.get("num_classes") != 10:
        raise MetricsError(f"modes_stacked needs a 10-class classifier of 1-channel MNIST digits (gan-bench classifier "
                           f"train dataset=mnist); {path} takes {meta.get('in_channels')}-channel images into "
                           f"{meta.get('num_classes')} classes")
    dataset = str(meta.get("dataset", "mnist"))
    if not dataset.startswith("mnist"):
        raise MetricsError(f"modes_stacked needs an MNIST classifier (gan-bench classifier train dataset=mnist); "
                           f"{path} was trained on {dataset}")


class StackedDigits(FeatureExtractor):
    """The MNIST classifier applied to each channel: output ``mode``, the mode id ``[B]`` of each image."""

    name: ClassVar[str] = "stacked_digits"
    outputs: ClassVar[tuple[str, ...]] = ("mode",)

    def __init__(self, model: nn.Module, path: Path, meta: dict[str, Any]) -> None:
        self.model, self.path, self.meta = model, path, meta
        self.weights_hash = file_sha256(path)

    @classmethod
    def load(cls, settings: EvalSettings) -> StackedDigits:
        if settings.classifier_path is None:
            raise MetricsError("modes_stacked needs the MNIST classifier: gan-bench classifier train dataset=mnist, "
                               "then eval.classifier=classifiers/mnist_28px_lenet.pt")
        path = Path(settings.classifier_path)
        model, meta = load_classifier(path, settings.device)
        _check_digit_classifier(path, meta)
        return cls(model, path, meta)

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mode": mode_ids(channel_digits(self.model, images))}

    def protocol(self) -> dict[str, Any]:
        return {"classifier": str(self.path), "classifier_sha256": self.weights_hash, "arch": self.meta["arch"],
                "classifier_test_accuracy": self.meta.get("test_accuracy"),
                "classifier_dataset": self.meta.get("dataset")}


@register_metric
class StackedModes(Metric):
    """Modes covered and KL to uniform of ``n_samples`` generated Stacked-MNIST images, from the modes it counts."""

    name, keys = "modes_stacked", ("modes_covered_stacked", "mode_kl_stacked")
    directions = {"modes_covered_stacked": HIGHER, "mode_kl_stacked": LOWER}
    labels = {"modes_covered_stacked": "modes (stacked)", "mode_kl_stacked": "mode KL (stacked)"}
    data = IMAGES
    extractor, output = StackedDigits, "mode"

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        return {"n_fake": self.settings.n_samples, "reference_n_fake": REFERENCE_N_SAMPLES, "n_modes": N_MODES,
                **extractor.protocol(),
                "mode": f"argmax digit of each channel (R, G, B), resized to {DIGIT_SIZE}x{DIGIT_SIZE} (bilinear) when "
                        "another size -> 100 d_R + 10 d_G + d_B",
                "covered": "a mode counts when it appears at least once",
                "kl": "KL(p_generated || uniform over 1000 modes) = sum_m p_m log(1000 p_m), natural log"}

    def warning(self, real: RealReference | None) -> str | None:
        n = self.settings.n_samples
        if n >= REFERENCE_N_SAMPLES:
            return None
        return (f"modes_stacked from {n} samples is not comparable to the references' values from "
                f"{REFERENCE_N_SAMPLES} (eval.n_samples={REFERENCE_N_SAMPLES})")

    def start(self) -> None:
        self.counts = torch.zeros(N_MODES, dtype=torch.long, device=self.settings.device)

    def update(self, features: torch.Tensor) -> None:
        self.counts += torch.bincount(features.to(self.counts.device), minlength=N_MODES)

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> Result:
        return stacked_mode_metrics(self.counts)
