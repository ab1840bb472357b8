"""Metrics that match the references: FID, IS, KID, precision/recall, domain-classifier FID, 2-D mode coverage.

The training loop builds an :class:`Evaluator`; the CLI calls :func:`fid_cli` (``gan-bench fid``) and
:func:`weights_cli` (``gan-bench weights``). :data:`METRICS` is the registry of metric names and the result keys each
one produces.
"""
from gan_bench.metrics.classifier import classifier_features, load_classifier, save_classifier, train_classifier
from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.evaluator import METRICS, Evaluator
from gan_bench.metrics.fid import fid_cli, folder_statistics, sample_statistics
from gan_bench.metrics.frechet import frechet_distance
from gan_bench.metrics.inception import load_inception, resolve_weights, weights_cli
from gan_bench.metrics.inception_score import inception_score
from gan_bench.metrics.kid import kernel_inception_distance
from gan_bench.metrics.modes import mode_metrics
from gan_bench.metrics.precision_recall import precision_recall
from gan_bench.metrics.stats import StreamingMoments, load_statistics, save_statistics

__all__ = [
    "METRICS",
    "Evaluator",
    "MetricsError",
    "StreamingMoments",
    "classifier_features",
    "fid_cli",
    "folder_statistics",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "load_classifier",
    "load_inception",
    "load_statistics",
    "mode_metrics",
    "precision_recall",
    "resolve_weights",
    "sample_statistics",
    "save_classifier",
    "save_statistics",
    "train_classifier",
    "weights_cli",
]
