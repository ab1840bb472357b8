"""Metrics that match the references: FID, IS, KID, precision/recall, domain-classifier FID, mode coverage
(2-D mixtures, Stacked MNIST).

Each metric is one class registered with :func:`register_metric` (see :mod:`gan_bench.metrics.registry`); the
training loop builds an :class:`Evaluator` for the names in ``eval.metrics``; the CLI calls :func:`fid_cli`
(``gan-bench fid``) and :func:`weights_cli` (``gan-bench weights``). :func:`registered_metrics` lists the metric
names, :data:`METRICS` maps each to the result keys it produces; each metric declares per key whether
:data:`LOWER` or :data:`HIGHER` is better (``direction``/``label`` in :mod:`gan_bench.metrics.registry`).
"""
# the built-in metrics register themselves on import (registered_metrics() lists them in BUILT_IN order)
from gan_bench.metrics.classifier import classifier_features, load_classifier, save_classifier, train_classifier
from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.evaluator import Evaluator
from gan_bench.metrics.extractors import ClassifierExtractor, FeatureExtractor, InceptionExtractor, RawSamples
from gan_bench.metrics.fid import FID, FrechetMetric, fid_cli, folder_statistics, sample_statistics
from gan_bench.metrics.fid_classifier import ClassifierFID
from gan_bench.metrics.frechet import frechet_distance
from gan_bench.metrics.inception import load_inception, resolve_weights, weights_cli
from gan_bench.metrics.inception_score import InceptionScore, inception_score
from gan_bench.metrics.kid import KID, kernel_inception_distance
from gan_bench.metrics.modes import ModeCoverage, mode_metrics
from gan_bench.metrics.modes_stacked import StackedDigits, StackedModes, stacked_mode_metrics
from gan_bench.metrics.precision_recall import PrecisionRecall, precision_recall
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import (
    HIGHER,
    IMAGES,
    LOWER,
    METRICS,
    MOMENTS,
    POINTS,
    ROWS,
    FakeFeatures,
    Metric,
    register_metric,
    registered_metrics,
)
from gan_bench.metrics.settings import EvalSettings
from gan_bench.metrics.stats import StreamingMoments, load_statistics, save_statistics

__all__ = [
    "FID",
    "HIGHER",
    "IMAGES",
    "KID",
    "LOWER",
    "METRICS",
    "MOMENTS",
    "POINTS",
    "ROWS",
    "ClassifierExtractor",
    "ClassifierFID",
    "EvalSettings",
    "Evaluator",
    "FakeFeatures",
    "FeatureExtractor",
    "FrechetMetric",
    "InceptionExtractor",
    "InceptionScore",
    "Metric",
    "MetricsError",
    "ModeCoverage",
    "PrecisionRecall",
    "RawSamples",
    "RealReference",
    "StackedDigits",
    "StackedModes",
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
    "register_metric",
    "registered_metrics",
    "resolve_weights",
    "sample_statistics",
    "save_classifier",
    "save_statistics",
    "stacked_mode_metrics",
    "train_classifier",
    "weights_cli",
]
