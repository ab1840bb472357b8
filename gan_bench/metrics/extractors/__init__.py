"""Feature extractors behind one interface (:class:`FeatureExtractor`): Inception, domain classifier, raw samples."""
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.extractors.classifier import ClassifierExtractor
from gan_bench.metrics.extractors.inception import InceptionExtractor
from gan_bench.metrics.extractors.samples import RawSamples

__all__ = ["ClassifierExtractor", "FeatureExtractor", "InceptionExtractor", "RawSamples"]
