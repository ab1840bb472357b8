"""The real side of the metrics: per extractor output, streamed moments and/or a fixed random subset of rows, cached.

Cache files (``.npz`` in the Evaluator's ``cache_dir``) are keyed by (dataset key, split, resolution, N, backbone,
weights hash): ``stats-...`` holds ``mu``/``sigma`` of all ``N`` real rows (pytorch-fid's keys), ``features-...``
the rows of the subset of ``N = min(n_real, n_samples)`` drawn with seed :data:`SUBSET_SEED`. One pass over the real
data fills every missing reference of an extractor; a pass always writes the moments too (they cost nothing more, and
spare a later FID its own pass).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from gan_bench.files import atomic_write
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.stats import StreamingMoments, load_statistics, save_statistics

SUBSET_SEED = 0


def reference_cache_path(
    cache_dir: str | Path,
    kind: str,
    *,
    dataset_key: str,
    split: str,
    resolution: int | str,
    n: int,
    backbone: str,
    weights_hash: str,
) -> Path:
    """Cache file of real-data ``kind`` ("stats" or "features"), keyed by (dataset, split, resolution, N, backbone,
    weights hash)."""
    parts = [kind, dataset_key, split, f"{resolution}px", f"n{n}", backbone, weights_hash[:12]]
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", p).strip("_") for p in parts)
    return Path(cache_dir) / f"{name}.npz"


def _save_rows(path: Path, rows: torch.Tensor, protocol: dict[str, Any]) -> None:
    text = np.array(json.dumps(protocol, sort_keys=True))
    atomic_write(path, lambda f: np.savez(f, features=rows.cpu().numpy(), protocol=text))


def _load_rows(path: Path) -> torch.Tensor | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        return torch.from_numpy(f["features"])


class RealReference:
    """What the metrics on one extractor output need of the real data: ``stats`` (mu, sigma) and/or ``rows``.

    Built from the cache when the files exist; otherwise :meth:`start`, :meth:`update` per real batch and
    :meth:`finish` compute and cache them. ``n`` real rows in all, ``n_rows`` in the subset.
    """

    def __init__(self, cache_key: dict[str, str], cache_dir: Path, *, n_real: int, n_samples: int,
                 moments: bool, rows: bool) -> None:
        self.cache_key = cache_key
        self.n, self.n_rows = n_real, min(n_real, n_samples)
        self.stats_path = reference_cache_path(cache_dir, "stats", n=self.n, **cache_key)
        self.rows_path = reference_cache_path(cache_dir, "features", n=self.n_rows, **cache_key)
        self.wants_moments, self.wants_rows = moments, rows
        self.stats: tuple[np.ndarray, np.ndarray] | None = None
        self.rows: torch.Tensor | None = _load_rows(self.rows_path) if rows else None
        if moments and self.stats_path.is_file():
            self.stats = load_statistics(self.stats_path)[:2]

    @property
    def complete(self) -> bool:
        """Whether everything asked for was found in the cache."""
        return not ((self.wants_moments and self.stats is None) or (self.wants_rows and self.rows is None))

    def start(self, device: torch.device) -> None:
        self._moments, self._kept = StreamingMoments(device), []
        self._keep = torch.zeros(self.n, dtype=torch.bool)
        self._keep[torch.randperm(self.n, generator=torch.Generator().manual_seed(SUBSET_SEED))[: self.n_rows]] = True

    def update(self, start: int, features: torch.Tensor) -> None:
        """Features of real rows ``start, start + 1, ...`` (batches in order)."""
        self._moments.update(features)
        if self.wants_rows:
            keep = self._keep[start : start + features.shape[0]].to(features.device)
            self._kept.append(features[keep].float().cpu())

    def finish(self, protocol: dict[str, Any]) -> None:
        """Take the results and write the cache files, each with ``protocol`` (how the features were computed)."""
        record = {"n": self.n, **self.cache_key, **protocol}
        self.stats = self._moments.numpy()
        save_statistics(self.stats_path, *self.stats, record)
        if self.wants_rows:
            self.rows = torch.cat(self._kept)
            _save_rows(self.rows_path, self.rows, {**record, "n": self.n_rows, "subset_seed": SUBSET_SEED})
        del self._moments, self._kept, self._keep


def real_batches(real: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, batch)`` over ``real`` on ``device``; uint8 images in [0, 255] become floats in [-1, 1] per batch."""
    for start in range(0, real.shape[0], batch_size):
        x = real[start : start + batch_size].to(device)
        yield start, x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x


def fill_references(extractor: FeatureExtractor, references: dict[str, RealReference], real: torch.Tensor,
                    batch_size: int, device: torch.device) -> None:
    """Compute the references of ``extractor`` (output -> reference) missing from the cache, in one pass over
    ``real``."""
    missing = {output: ref for output, ref in references.items() if not ref.complete}
    if not missing:
        return
    for ref in missing.values():
        ref.start(device)
    for start, images in real_batches(real, batch_size, device):
        features = extractor.features(images)
        for output, ref in missing.items():
            ref.update(start, features[output])
    for ref in missing.values():
        ref.finish(extractor.protocol())
