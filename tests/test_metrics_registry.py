"""The metric registry: metrics registered outside the package run through the Evaluator exactly like built-in ones.

The two test metrics share one extractor of their own (per-channel means of an image and the index of its brightest
channel): one uses a cached real reference (moments) and all generated rows, the other accumulates a per-sample id
itself, as a Stacked-MNIST mode count would.
"""
from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from gan_bench.metrics import (
    METRICS,
    MOMENTS,
    POINTS,
    ROWS,
    Evaluator,
    FakeFeatures,
    FeatureExtractor,
    Metric,
    MetricsError,
    RealReference,
    register_metric,
    registered_metrics,
)
from gan_bench.metrics.extractors import RawSamples

BUILT_INS = ["fid", "is", "kid", "pr", "fid_classifier", "modes"]


class ChannelMeans(FeatureExtractor):
    """Per-channel mean of each image and the index of its brightest channel; counts its loads and batches."""

    name: ClassVar[str] = "channel_means"
    outputs: ClassVar[tuple[str, ...]] = ("means", "brightest")
    weights_hash = "0123456789abcdef"
    loads = 0
    batches = 0

    @classmethod
    def load(cls, settings) -> ChannelMeans:
        cls.loads += 1
        return cls()

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        type(self).batches += 1
        means = images.float().mean(dim=(2, 3))
        return {"means": means, "brightest": means.argmax(dim=1)}

    def protocol(self) -> dict[str, Any]:
        return {"features": "channel means"}


@register_metric
class MeanGap(Metric):
    """Largest gap between the real and generated per-channel means."""

    name, keys = "test_mean_gap", ("mean_gap",)
    directions, labels = {"mean_gap": "lower"}, {"mean_gap": "mean gap"}
    extractor, output = ChannelMeans, "means"
    real, fake = MOMENTS, ROWS

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        return {"n_real": real.n, "real_stats": real.stats_path.name, **extractor.protocol()}

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> dict[str, float]:
        gap = fake.rows.mean(0).double().cpu() - torch.from_numpy(real.stats[0])
        return {"mean_gap": float(gap.abs().max())}


@register_metric
class BrightestChannels(Metric):
    """How many distinct brightest channels the generated images have, from per-sample ids it accumulates."""

    name, keys = "test_brightest", ("channels_seen", "batches_seen")
    directions = {"channels_seen": "higher", "batches_seen": None}  # a count of batches: a diagnostic
    extractor, output = ChannelMeans, "brightest"

    def start(self) -> None:
        self.counts, self.batches = torch.zeros(3, dtype=torch.long), 0

    def update(self, features: torch.Tensor) -> None:
        self.counts += torch.bincount(features, minlength=3).cpu()  # features arrive on the evaluation device
        self.batches += 1

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> dict[str, int]:
        return {"channels_seen": int((self.counts > 0).sum()), "batches_seen": self.batches}


def generated(n_total: int):
    """Sample k (in order) is black with channel k % 2 white: over 7 samples the channel means are (1/7, -1/7, -1)."""
    cursor = [0]

    def sample_fn(n: int) -> torch.Tensor:
        x = -torch.ones(n, 3, 4, 4)
        for i in range(n):
            x[i, (cursor[0] + i) % 2] = 1.0
        cursor[0] += n
        return x

    return sample_fn


def test_plugin_metrics_are_registered_after_the_built_ins() -> None:
    names = registered_metrics()
    assert names[:6] == BUILT_INS
    assert names.index("test_mean_gap") < names.index("test_brightest")
    assert METRICS["test_mean_gap"] == ("mean_gap",) and METRICS["test_brightest"] == ("channels_seen", "batches_seen")
    assert registered_metrics(POINTS) == ["modes"]


@pytest.mark.device
def test_plugin_metrics_run_through_the_evaluator(tmp_path, device) -> None:
    real = -torch.ones(6, 3, 4, 4)
    real[:, 0] = 1.0  # real channel means (1, -1, -1)
    kwargs = {"real": real, "dataset_key": "toy", "n_samples": 7, "batch_size": 3, "device": device,
              "cache_dir": tmp_path}
    ChannelMeans.loads = ChannelMeans.batches = 0
    evaluator = Evaluator(["test_mean_gap", "test_brightest"], **kwargs)
    assert ChannelMeans.loads == 1  # one extractor for both metrics
    assert ChannelMeans.batches == 2  # the real reference: 6 images in batches of 3
    ChannelMeans.batches = 0
    result = evaluator(generated(7))
    assert ChannelMeans.batches == 3  # 7 samples in batches of 3, each through the extractor once
    # generated channel means (1/7, -1/7, -1) against the real (1, -1, -1): the largest gap is 6/7
    assert result == {"mean_gap": pytest.approx(6 / 7), "channels_seen": 2, "batches_seen": 3}
    cache = "stats-toy-train-4x4px-n6-channel_means_means-0123456789ab.npz"
    assert (tmp_path / cache).is_file()
    assert evaluator.protocol == {"test_mean_gap": {"n_real": 6, "real_stats": cache, "features": "channel means"},
                                  "test_brightest": {}}
    assert evaluator.unavailable == {}
    ChannelMeans.batches = 0  # a second evaluator reads the cached reference: no pass over the real data
    assert Evaluator(["test_mean_gap"], **kwargs)(generated(7)) == {"mean_gap": pytest.approx(6 / 7)}
    assert ChannelMeans.batches == 3


def test_unknown_metric_lists_every_registered_name(tmp_path) -> None:
    with pytest.raises(MetricsError) as info:
        Evaluator(["fjd", "test_mean_gapp"], real=torch.zeros(4, 3, 4, 4), dataset_key="k", n_samples=4,
                  batch_size=2, device=torch.device("cpu"), cache_dir=tmp_path)
    message = str(info.value)
    assert message.startswith("unknown metric(s) 'fjd', 'test_mean_gapp'; valid: ")
    assert message.endswith(", ".join(registered_metrics())) and "test_brightest" in message


def test_bad_registrations_are_refused() -> None:
    with pytest.raises(MetricsError, match="'fid' is already registered"):
        register_metric(type("AnotherFID", (MeanGap,), {"name": "fid"}))
    with pytest.raises(MetricsError, match="reads output 'pool3', not one of ChannelMeans.outputs"):
        register_metric(type("Wrong", (MeanGap,), {"name": "test_wrong", "output": "pool3"}))
    with pytest.raises(MetricsError, match="has real='all'"):
        register_metric(type("Wrong", (MeanGap,), {"name": "test_wrong", "real": "all"}))
    with pytest.raises(MetricsError, match="not a subclass of Metric"):
        register_metric(dict)
    assert "test_wrong" not in registered_metrics()


def test_a_metric_on_the_wrong_kind_of_data_is_one_clear_error(tmp_path) -> None:
    common = {"dataset_key": "k", "n_samples": 10, "batch_size": 5, "device": torch.device("cpu"),
              "cache_dir": tmp_path}
    with pytest.raises(MetricsError) as info:
        Evaluator(["modes"], real=torch.zeros(4, 1, 8, 8), **common)
    assert str(info.value) == ("the modes metric exists only for the 2-D mixtures ring8 and grid25, not for images "
                               "(the real data have shape (4, 1, 8, 8))")
    with pytest.raises(MetricsError) as info:
        Evaluator(["modes", "fid"], real=torch.zeros(4, 2), mode_centres=torch.zeros(1, 2), mode_std=1.0, **common)
    assert str(info.value) == "fid need real images NCHW in memory, got shape (4, 2) (2-D points have only: modes)"


def test_modes_min_count_is_applied_and_recorded(tmp_path) -> None:
    centres = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    points = torch.tensor([[1.0, 0.0]] * 4 + [[-1.0, 0.0]] * 2)
    common = {"real": None, "dataset_key": "two", "n_samples": 6, "batch_size": 4, "device": torch.device("cpu"),
              "cache_dir": tmp_path, "mode_centres": centres, "mode_std": 0.05}
    default = Evaluator(["modes"], **common)
    default_batches = iter(points.split(4))
    assert default(lambda n: next(default_batches))["modes_covered"] == 2
    assert default.protocol["modes"]["covered"] == ">= 1 high-quality sample (VEEGAN)"
    strict = Evaluator(["modes"], modes_min_count=3, **common)
    strict_batches = iter(points.split(4))
    assert strict(lambda n: next(strict_batches))["modes_covered"] == 1
    assert strict.protocol["modes"]["covered"] == ">= 3 high-quality samples"


def test_raw_samples_are_rows() -> None:
    points = torch.randn(5, 2)
    assert torch.equal(RawSamples().features(points)["samples"], points)
    assert RawSamples().features(torch.zeros(2, 3, 4, 4))["samples"].shape == (2, 48)
