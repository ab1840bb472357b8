"""The evaluator the training loop calls: one pass over generator samples feeds every requested metric.

Real-data features are computed once at construction and cached on disk (``cache_dir``): pool3 statistics of all of
``real`` for FID, pool3 features of a fixed random subset of ``min(len(real), n_samples)`` rows for KID and
precision/recall, and the domain classifier's statistics for ``fid_classifier``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from gan_bench.metrics.classifier import classifier_features, load_classifier
from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.fid import fid_protocol, reference_cache_path
from gan_bench.metrics.frechet import FrechetReference
from gan_bench.metrics.inception import (
    BACKBONE,
    InceptionFeatures,
    file_sha256,
    load_inception,
    tf32,
    to_inception_input,
)
from gan_bench.metrics.inception_score import InceptionScoreAccumulator
from gan_bench.metrics.kid import kernel_inception_distance
from gan_bench.metrics.modes import mode_metrics
from gan_bench.metrics.precision_recall import precision_recall
from gan_bench.metrics.stats import StreamingMoments, load_statistics, save_statistics

# metric name -> the keys it adds to the result dict
METRICS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "is": ("is_mean", "is_std"),
    "kid": ("kid_mean", "kid_std"),
    "pr": ("precision", "recall"),
    "fid_classifier": ("fid_classifier",),
    "modes": ("modes_covered", "high_quality", "mode_kl"),
}
IMAGE_METRICS = ("fid", "is", "kid", "pr", "fid_classifier")
IS_SPLITS = 10
PR_K = 3
_SUBSET_SEED = 0


def _save_features(path: Path, features: torch.Tensor, protocol: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, features=features.cpu().numpy(), protocol=np.array(json.dumps(protocol, sort_keys=True)))
    tmp.replace(path)


def _load_features(path: Path) -> torch.Tensor | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        return torch.from_numpy(f["features"])


class Evaluator:
    """Computes the requested metrics of ``sample_fn(n) -> samples in [-1, 1]`` against ``real``.

    ``real``: images NCHW in [-1, 1] or uint8 in [0, 255] (converted per batch) (FID, IS, KID, PR, classifier FID); the modes metric does not use it (points
    ``[N, 2]`` or ``None`` are fine).
    ``__call__`` returns every key of :data:`METRICS` for the requested metrics; a metric listed in ``unavailable``
    (e.g. IS with converted weights) has ``None`` values. ``protocol[metric]`` records how each was computed.
    """

    def __init__(
        self,
        metrics: Sequence[str],
        *,
        real: torch.Tensor | None,
        dataset_key: str,
        n_samples: int,
        batch_size: int,
        device: torch.device,
        cache_dir: Path,
        inception_weights: str | None = None,
        classifier_path: str | None = None,
        classifier_layer: str = "logits",
        mode_centres: torch.Tensor | None = None,
        mode_std: float | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        split: str = "train",
        fast_cuda: bool = True,
        modes_min_count: int = 1,
    ) -> None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise MetricsError(f"unknown metric(s) {', '.join(map(repr, unknown))}; valid: {', '.join(METRICS)}")
        self.metrics = list(dict.fromkeys(metrics))
        self.protocol: dict[str, dict[str, Any]] = {}
        self.unavailable: dict[str, str] = {}
        if n_samples < (IS_SPLITS if "is" in self.metrics else 2) or batch_size < 1:
            raise MetricsError(f"need n_samples >= 2 (>= {IS_SPLITS} for IS) and batch_size >= 1, "
                               f"got {n_samples} and {batch_size}")
        image_metrics = [m for m in self.metrics if m in IMAGE_METRICS]
        if image_metrics and (real is None or real.ndim != 4):
            got = "no real data" if real is None else f"shape {tuple(real.shape)}"
            raise MetricsError(f"{', '.join(image_metrics)} need real images NCHW in memory, got {got}")
        if "modes" in self.metrics:
            if mode_centres is None or mode_std is None:
                raise MetricsError("the modes metric needs mode_centres [M, 2] and mode_std")
            self.protocol["modes"] = {"n_fake": n_samples, "n_modes": int(mode_centres.shape[0]), "std": mode_std,
                                      "high_quality": "within 3 std of the nearest centre",
                                      "covered": ">= 1 high-quality sample (VEEGAN)"}
        self.n_samples, self.batch_size = n_samples, batch_size
        self.device = torch.device(device)
        self.cache_dir = Path(cache_dir)
        self.dataset_key, self.split = dataset_key, split
        self.fast_cuda = fast_cuda and self.device.type == "cuda"
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.mode_centres, self.mode_std = mode_centres, mode_std
        self.modes_min_count = modes_min_count
        self.classifier_layer = classifier_layer
        self.resolution = f"{real.shape[-2]}x{real.shape[-1]}" if image_metrics else "points"

        self.inception: InceptionFeatures | None = None
        self.real_stats: tuple[np.ndarray, np.ndarray] | None = None
        self.real_features: torch.Tensor | None = None
        self._references: dict[str, FrechetReference] = {}  # real side of each Fréchet distance, S^½ kept
        if any(m in self.metrics for m in ("fid", "is", "kid", "pr")):
            self.inception = load_inception(inception_weights, device=self.device, channels_last=self.fast_cuda)
            reason = self.inception.weights.is_unavailable_reason
            if "is" in self.metrics and reason:
                self.unavailable["is"] = reason
            self._prepare_real_inception(real)

        self.classifier: torch.nn.Module | None = None
        self.classifier_stats: tuple[np.ndarray, np.ndarray] | None = None
        if "fid_classifier" in self.metrics:
            if classifier_path is None:
                raise MetricsError("fid_classifier needs a classifier file (eval.classifier / classifier_path)")
            self._prepare_real_classifier(real, Path(classifier_path))

    # ------------------------------------------------------------------ real data
    def _real_batches(self, real: torch.Tensor):
        for start in range(0, real.shape[0], self.batch_size):
            x = real[start : start + self.batch_size].to(self.device)
            yield start, x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x

    def _pool3(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = to_inception_input(images)
        if self.fast_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with tf32(self.device, self.fast_cuda):
            return self.inception(x)

    def _prepare_real_inception(self, real: torch.Tensor) -> None:
        weights = self.inception.weights
        key = dict(dataset_key=self.dataset_key, split=self.split, resolution=self.resolution,
                   backbone="inception_pool3", weights_hash=weights.sha256)
        n_real, n_feat = real.shape[0], min(real.shape[0], self.n_samples)
        stats_path = reference_cache_path(self.cache_dir, "stats", n=n_real, **key)
        feats_path = reference_cache_path(self.cache_dir, "features", n=n_feat, **key)
        need_stats = "fid" in self.metrics
        need_feats = "kid" in self.metrics or "pr" in self.metrics
        if need_stats and stats_path.is_file():
            mu, sigma, _ = load_statistics(stats_path)
            self.real_stats = (mu, sigma)
        if need_feats:
            self.real_features = _load_features(feats_path)
        if (need_stats and self.real_stats is None) or (need_feats and self.real_features is None):
            keep = torch.zeros(n_real, dtype=torch.bool)
            keep[torch.randperm(n_real, generator=torch.Generator().manual_seed(_SUBSET_SEED))[:n_feat]] = True
            moments, kept = StreamingMoments(self.device), []
            for start, images in self._real_batches(real):
                pool3, _ = self._pool3(images)
                moments.update(pool3)
                if need_feats:
                    kept.append(pool3[keep[start : start + pool3.shape[0]].to(pool3.device)].float().cpu())
            protocol = {"n": n_real, **key, **weights.protocol()}
            self.real_stats = moments.numpy()
            save_statistics(stats_path, *self.real_stats, protocol)
            if need_feats:
                self.real_features = torch.cat(kept)
                _save_features(feats_path, self.real_features, {**protocol, "n": n_feat, "subset_seed": _SUBSET_SEED})
        common = {**weights.protocol(), "input": "8-bit rounded, bilinear resize to 299 (pytorch-fid)",
                  "tf32_channels_last": self.fast_cuda}
        if "fid" in self.metrics:
            self.protocol["fid"] = fid_protocol(common, n_real=n_real, n_fake=self.n_samples, split=self.split,
                                                real_stats=str(stats_path), distance="eigen route, float64")
        common = {"split": self.split, **common}
        if "is" in self.metrics:
            self.protocol["is"] = {"n_fake": self.n_samples, "splits": IS_SPLITS, "logits": "pool3 @ fc.weight^T "
                                   "(1008 classes, no bias, as the reference code)", **common}
        if "kid" in self.metrics:
            self.protocol["kid"] = {"n_real": n_feat, "n_fake": self.n_samples, "n_subsets": self.kid_subsets,
                                    "subset_size": min(self.kid_subset_size, n_feat, self.n_samples),
                                    "kernel": "(x.y/d + 1)^3", "real_features": str(feats_path), **common}
        if "pr" in self.metrics:
            self.protocol["pr"] = {"n_real": n_feat, "n_fake": self.n_samples, "k": PR_K,
                                   "features": BACKBONE + " (the paper used VGG-16 fc2)", **common}

    def _prepare_real_classifier(self, real: torch.Tensor, path: Path) -> None:
        self.classifier, meta = load_classifier(path, self.device)
        digest = file_sha256(path)
        stats_path = reference_cache_path(
            self.cache_dir, "stats", dataset_key=self.dataset_key, split=self.split, resolution=self.resolution,
            n=real.shape[0], backbone=f"classifier_{meta['arch']}_{self.classifier_layer}", weights_hash=digest,
        )
        if stats_path.is_file():
            mu, sigma, _ = load_statistics(stats_path)
        else:
            moments = StreamingMoments(self.device)
            for _, images in self._real_batches(real):
                moments.update(classifier_features(self.classifier, images, self.classifier_layer))
            mu, sigma = moments.numpy()
            save_statistics(stats_path, mu, sigma, {"classifier": str(path), "sha256": digest, **meta})
        self.classifier_stats = (mu, sigma)
        self.protocol["fid_classifier"] = {
            "n_real": real.shape[0], "n_fake": self.n_samples, "split": self.split, "classifier": str(path),
            "classifier_sha256": digest, "arch": meta["arch"], "test_accuracy": meta.get("test_accuracy"),
            "layer": self.classifier_layer, "real_stats": str(stats_path),
        }

    # ------------------------------------------------------------------ generated samples
    def _reference(self, metric: str, stats: tuple[np.ndarray, np.ndarray]) -> FrechetReference:
        """The real side of a Fréchet distance, with its covariance square root kept across evaluations."""
        if metric not in self._references:
            self._references[metric] = FrechetReference(*stats, device=self.device)
        return self._references[metric]

    def __call__(self, sample_fn: Callable[[int], torch.Tensor]) -> dict[str, float | None]:
        want = set(self.metrics) - set(self.unavailable)
        moments = StreamingMoments(self.device) if "fid" in want else None
        is_acc = InceptionScoreAccumulator(self.n_samples, IS_SPLITS) if "is" in want else None
        fake_features: list[torch.Tensor] | None = [] if {"kid", "pr"} & want else None
        cls_moments = StreamingMoments(self.device) if "fid_classifier" in want else None
        points: list[torch.Tensor] | None = [] if "modes" in want else None
        use_inception = moments is not None or is_acc is not None or fake_features is not None

        done = 0
        while done < self.n_samples:
            b = min(self.batch_size, self.n_samples - done)
            with torch.no_grad():
                samples = sample_fn(b)
            if samples.shape[0] != b:
                raise MetricsError(f"sample_fn({b}) returned {samples.shape[0]} samples")
            samples = samples.detach().to(self.device)
            done += b
            if use_inception:
                pool3, logits = self._pool3(samples)
                if moments is not None:
                    moments.update(pool3)
                if is_acc is not None:
                    is_acc.update(logits)
                if fake_features is not None:
                    fake_features.append(pool3.float())
            if cls_moments is not None:
                cls_moments.update(classifier_features(self.classifier, samples, self.classifier_layer))
            if points is not None:
                points.append(samples.float())

        results: dict[str, float | None] = {key: None for m in self.metrics for key in METRICS[m]}
        if moments is not None:
            results["fid"] = self._reference("fid", self.real_stats).distance(moments.mean, moments.covariance)
        if is_acc is not None:
            results["is_mean"], results["is_std"] = is_acc.result()
        if fake_features is not None:
            fake = torch.cat(fake_features)
            real = self.real_features.to(self.device)
            if "kid" in want:
                results["kid_mean"], results["kid_std"], _ = kernel_inception_distance(
                    real, fake, n_subsets=self.kid_subsets, subset_size=self.kid_subset_size
                )
            if "pr" in want:
                results["precision"], results["recall"] = precision_recall(real, fake, k=PR_K)
        if cls_moments is not None:
            results["fid_classifier"] = self._reference("fid_classifier", self.classifier_stats).distance(
                cls_moments.mean, cls_moments.covariance)
        if points is not None:
            results.update(mode_metrics(torch.cat(points), self.mode_centres, self.mode_std))
        return results
