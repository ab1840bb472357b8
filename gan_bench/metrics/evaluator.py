"""The evaluator the training loop calls: one pass over generator samples feeds every requested metric.

It knows no metric by name. From the requested metrics (see :mod:`gan_bench.metrics.registry`) it collects the
feature extractors and outputs they need, loads each extractor once, prepares the real references once (cached on
disk, see :mod:`gan_bench.metrics.reference`), and at every call streams ``n_samples`` generated samples through each
needed extractor once, then asks each metric for its values.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.reference import RealReference, fill_references
from gan_bench.metrics.registry import (
    IMAGES,
    MOMENTS,
    POINTS,
    ROWS,
    FakeFeatures,
    Metric,
    metric_classes,
    registered_metrics,
)
from gan_bench.metrics.settings import EvalSettings

Source = tuple[type[FeatureExtractor], str]  # (extractor class, output): what a metric reads


def _source(metric: Metric) -> Source:
    return metric.extractor, metric.output


def _check_counts(classes: Sequence[type[Metric]], n_samples: int, batch_size: int) -> None:
    if n_samples < max([2, *(c.min_samples for c in classes)]) or batch_size < 1:
        extra = "".join(f" (>= {c.min_samples} for {c.name})" for c in classes if c.min_samples > 2)
        raise MetricsError(f"need n_samples >= 2{extra} and batch_size >= 1, got {n_samples} and {batch_size}")


def _check_data_kind(classes: Sequence[type[Metric]], real: torch.Tensor | None) -> None:
    """Image metrics need real images in memory, 2-D metrics are meaningless on images: one-line MetricsErrors."""
    images = real is not None and real.ndim == 4
    on_images = [c.name for c in classes if c.data == IMAGES]
    if on_images and not images:
        got = "no real data" if real is None else f"shape {tuple(real.shape)}"
        points = registered_metrics(POINTS)
        hint = f" (2-D points have only: {', '.join(points)})" if real is not None and real.ndim == 2 else ""
        raise MetricsError(f"{', '.join(on_images)} need real images NCHW in memory, got {got}{hint}")
    on_points = [c.name for c in classes if c.data == POINTS]
    if on_points and images:
        raise MetricsError(f"the {', '.join(on_points)} metric exists only for the 2-D mixtures ring8 and grid25, "
                           f"not for images (the real data have shape {tuple(real.shape)})")
    needs_real = [c.name for c in classes if c.real is not None]
    if needs_real and real is None:
        raise MetricsError(f"{', '.join(needs_real)} need the real data, got none")


class Evaluator:
    """Computes the requested metrics of ``sample_fn(n) -> samples in [-1, 1]`` against ``real``.

    ``real``: images NCHW in [-1, 1] or uint8 in [0, 255] (converted per batch) for the image metrics; the 2-D
    metrics take points ``[N, 2]`` or ``None``. ``__call__`` returns every result key (``Metric.keys``) of the
    requested metrics; a metric listed in ``unavailable`` (e.g. IS with converted weights) has ``None`` values.
    ``protocol[metric]`` records how each was computed.
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
        part: Callable[[int], slice] | None = None,
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        # data-parallel: sample_fn(b) gives this process's ``part`` of each batch; ``gather`` joins the processes'
        # feature rows in order, so every process computes the metrics of the whole set of samples
        self.part, self.gather = part or (lambda b: slice(0, b)), gather or (lambda rows: rows)
        self.metrics = list(dict.fromkeys(metrics))
        classes = metric_classes(self.metrics)
        _check_counts(classes, n_samples, batch_size)
        _check_data_kind(classes, real)
        device = torch.device(device)
        self.settings = EvalSettings(
            n_samples=n_samples, batch_size=batch_size, device=device, split=split,
            fast_cuda=fast_cuda and device.type == "cuda", inception_weights=inception_weights,
            classifier_path=classifier_path, classifier_layer=classifier_layer, mode_centres=mode_centres,
            mode_std=mode_std, modes_min_count=modes_min_count, kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size,
        )
        self._metrics = [cls(self.settings) for cls in classes]
        self._extractors = self._load_extractors()
        self._references = self._prepare_references(real, dataset_key, Path(cache_dir))
        self.protocol: dict[str, dict[str, Any]] = {}
        self.on_batch: Callable[[int], None] | None = None  # called with each batch's size: a progress bar
        self.unavailable: dict[str, str] = {}
        for m in self._metrics:
            extractor, reference = self._extractors[m.extractor], self._references.get(_source(m))
            self.protocol[m.name] = m.protocol(extractor, reference)
            reason = extractor.unavailable_reason(m.output)
            if reason:
                self.unavailable[m.name] = reason
        notes = [note for m in self._metrics if (note := m.warning(self._references.get(_source(m))))]
        if notes:
            print("warning: " + "; ".join(notes), file=sys.stderr)

    def _load_extractors(self) -> dict[type[FeatureExtractor], FeatureExtractor]:
        """Each extractor class the metrics name, loaded once; every metric's output checked against it."""
        for m in self._metrics:
            if m.output not in m.extractor.outputs:
                raise MetricsError(f"{m.name} reads output {m.output!r} of the {m.extractor.name} features, which has "
                                   f"only {', '.join(m.extractor.outputs)}")
        loaded: dict[type[FeatureExtractor], FeatureExtractor] = {}
        for m in self._metrics:
            if m.extractor not in loaded:
                loaded[m.extractor] = m.extractor.load(self.settings)
        return loaded

    def _prepare_references(self, real: torch.Tensor | None, dataset_key: str,
                            cache_dir: Path) -> dict[Source, RealReference]:
        """The real references the metrics ask for, one per (extractor, output), from the cache or one pass each."""
        wanted: dict[Source, set[str]] = {}
        for m in self._metrics:
            if m.real is not None:
                wanted.setdefault(_source(m), set()).add(m.real)
        if not wanted:
            return {}
        resolution = f"{real.shape[-2]}x{real.shape[-1]}" if real.ndim == 4 else "points"
        references: dict[Source, RealReference] = {}
        for (cls, output), kinds in wanted.items():
            backbone, weights_hash = self._extractors[cls].cache_key(output)
            key = {"dataset_key": dataset_key, "split": self.settings.split, "resolution": resolution,
                   "backbone": backbone, "weights_hash": weights_hash}
            references[cls, output] = RealReference(key, cache_dir, n_real=real.shape[0],
                                                    n_samples=self.settings.n_samples,
                                                    moments=MOMENTS in kinds, rows=ROWS in kinds)
        for cls, extractor in self._extractors.items():
            mine = {output: ref for (c, output), ref in references.items() if c is cls}
            fill_references(extractor, mine, real, self.settings.batch_size, self.settings.device)
        return references

    # ------------------------------------------------------------------ generated samples
    def _batches(self, sample_fn: Callable[[int], torch.Tensor]) -> Iterator[torch.Tensor]:
        """``n_samples`` samples of ``sample_fn`` on the device, in batches of at most ``batch_size``."""
        n, done = self.settings.n_samples, 0
        while done < n:
            b = min(self.settings.batch_size, n - done)
            with torch.no_grad():
                samples = sample_fn(b)
            expected = len(range(b)[self.part(b)])
            if samples.shape[0] != expected:
                raise MetricsError(f"sample_fn({b}) returned {samples.shape[0]} samples, not {expected}")
            done += b
            yield samples.detach().to(self.settings.device)
            if self.on_batch is not None:
                self.on_batch(b)

    def _fake_sides(self, active: Sequence[Metric]) -> dict[Source, FakeFeatures]:
        """One accumulator per (extractor, output) the active metrics read, keeping what any of them asks for."""
        asked: dict[Source, set[str | None]] = {}
        for m in active:
            asked.setdefault(_source(m), set()).add(m.fake)
        device = self.settings.device
        return {source: FakeFeatures(device, moments=MOMENTS in kinds, rows=ROWS in kinds)
                for source, kinds in asked.items()}

    def __call__(self, sample_fn: Callable[[int], torch.Tensor]) -> dict[str, float | None]:
        active = [m for m in self._metrics if m.name not in self.unavailable]
        fake = self._fake_sides(active)
        for m in active:
            m.start()
        extractors = {m.extractor: self._extractors[m.extractor] for m in active}
        for samples in self._batches(sample_fn):
            for cls, extractor in extractors.items():
                outputs = {name: self.gather(rows) for name, rows in extractor.features(samples).items()}
                for (c, output), side in fake.items():
                    if c is cls:
                        side.update(outputs[output])
                for m in active:
                    if m.extractor is cls:
                        m.update(outputs[m.output])
        results: dict[str, float | None] = {key: None for m in self._metrics for key in m.keys}
        for m in active:
            results.update(m.compute(self._references.get(_source(m)), fake[_source(m)]))
        return results
