"""The Evaluator's options, as every metric and feature extractor sees them (one frozen record, no globals)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EvalSettings:
    """What a metric or an extractor may read: sample counts, device and the per-metric options of the Evaluator.

    ``fast_cuda`` is already False off CUDA; ``mode_centres``/``mode_std`` are only set for the 2-D mixtures.
    """

    n_samples: int
    batch_size: int
    device: torch.device
    split: str = "train"
    fast_cuda: bool = False
    inception_weights: str | None = None
    classifier_path: str | None = None
    classifier_layer: str = "logits"
    mode_centres: torch.Tensor | None = None
    mode_std: float | None = None
    modes_min_count: int = 1
    kid_subsets: int = 100
    kid_subset_size: int = 1000
