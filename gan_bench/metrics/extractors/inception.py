"""pytorch-fid's Inception-v3 as a feature extractor: ``pool3`` (2048-d, FID/KID/PR) and ``logits`` (1008-way, IS).

The weights are resolved by :func:`gan_bench.metrics.inception.resolve_weights` (explicit file, torch hub cache,
pytorch-fid's download, offline conversion). ``logits`` exist only with the real FID weights; with the converted ones
they are absent and :meth:`InceptionExtractor.unavailable_reason` says why IS is unavailable.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.inception import InceptionFeatures, load_inception, tf32, to_inception_input
from gan_bench.metrics.settings import EvalSettings

INPUT = "8-bit rounded, bilinear resize to 299 (pytorch-fid)"


class InceptionExtractor(FeatureExtractor):
    """Generator output in [-1, 1] -> 8-bit rounding as a PNG would do -> pytorch-fid's network (resize to 299 inside).

    With ``fast_cuda`` the network runs in channels-last layout with TF32 allowed, as recorded in the protocol.
    """

    name: ClassVar[str] = "inception"
    outputs: ClassVar[tuple[str, ...]] = ("pool3", "logits")

    def __init__(self, net: InceptionFeatures, device: torch.device, fast_cuda: bool) -> None:
        self.net, self.device, self.fast_cuda = net, device, fast_cuda
        self.weights_hash = net.weights.sha256

    @classmethod
    def load(cls, settings: EvalSettings) -> InceptionExtractor:
        net = load_inception(settings.inception_weights, device=settings.device, channels_last=settings.fast_cuda)
        return cls(net, settings.device, settings.fast_cuda)

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = to_inception_input(images)
        if self.fast_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with tf32(self.device, self.fast_cuda):
            pool3, logits = self.net(x)
        return {"pool3": pool3} if logits is None else {"pool3": pool3, "logits": logits}

    def protocol(self) -> dict[str, Any]:
        return {**self.net.weights.protocol(), "input": INPUT, "tf32_channels_last": self.fast_cuda}

    def unavailable_reason(self, output: str) -> str | None:
        return self.net.weights.is_unavailable_reason if output == "logits" else None
