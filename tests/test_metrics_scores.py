"""IS, KID, precision/recall and mode coverage against direct reference computations and hand-made cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gan_bench.metrics import inception_score, kernel_inception_distance, mode_metrics, precision_recall
from gan_bench.metrics.inception_score import InceptionScoreAccumulator


# ---------------------------------------------------------------- Inception Score
def numpy_inception_score(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """Salimans et al.'s reference loop: per split, exp(mean_x KL(p(y|x) || p(y)))."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    size = len(p) // splits
    scores = []
    for k in range(splits):
        part = p[k * size : (k + 1) * size]
        py = part.mean(0, keepdims=True)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(py)), 1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_equals_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(1003, 20))  # 3 left over: dropped, as in the reference
    mean, std = inception_score(torch.tensor(logits), splits=10)
    ref_mean, ref_std = numpy_inception_score(logits, 10)
    assert mean == pytest.approx(ref_mean, rel=1e-10)
    assert std == pytest.approx(ref_std, rel=1e-8)


def test_inception_score_known_extremes() -> None:
    # one-hot predictions spread evenly over C classes -> IS = C; identical predictions -> IS = 1
    one_hot = torch.eye(8).repeat(10, 1) * 1000.0
    assert inception_score(one_hot, splits=10)[0] == pytest.approx(8.0, rel=1e-9)
    assert inception_score(torch.zeros(40, 8), splits=4) == pytest.approx((1.0, 0.0))


def test_streaming_inception_score_equals_one_shot() -> None:
    logits = torch.randn(95, 7, generator=torch.Generator().manual_seed(1))
    acc = InceptionScoreAccumulator(95, splits=5)
    for chunk in logits.split(13):
        acc.update(chunk)
    assert acc.result() == pytest.approx(inception_score(logits, splits=5), rel=1e-12)


def test_inception_score_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one sample per split"):
        inception_score(torch.zeros(5, 3), splits=10)
    acc = InceptionScoreAccumulator(20, splits=2)
    acc.update(torch.zeros(10, 3))
    with pytest.raises(ValueError, match="expected at least 20"):
        acc.result()


# ---------------------------------------------------------------- KID
def numpy_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """O(n^2) double loops over the cubic polynomial kernel (x.y/d + 1)^3."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_single_full_subset_equals_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(30, 5)), rng.normal(loc=0.5, size=(30, 5))
    for n_subsets in (1, 50):  # every subset is both whole sets: one value, and no spread to report
        mean, std, size = kernel_inception_distance(torch.tensor(real), torch.tensor(fake), n_subsets=n_subsets,
                                                    subset_size=1000)
        assert size == 30 and std is None
        assert mean == pytest.approx(numpy_mmd2_unbiased(fake, real), rel=1e-10)
    mean, std, size = kernel_inception_distance(torch.tensor(real), torch.tensor(fake[:20]), n_subsets=5)
    assert size == 20 and std > 0  # real subsets of 20 of 30 differ: a real spread


def test_kid_subsets_average_of_per_subset_references() -> None:
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(40, 4)), rng.normal(scale=1.5, size=(25, 4))
    mean, std, size = kernel_inception_distance(torch.tensor(real), torch.tensor(fake), n_subsets=3, subset_size=10,
                                                seed=7)
    gen = torch.Generator().manual_seed(7)  # the documented draw order: fake indices, then real indices
    values = []
    for _ in range(3):
        i_f = torch.randperm(25, generator=gen)[:10].numpy()
        i_r = torch.randperm(40, generator=gen)[:10].numpy()
        values.append(numpy_mmd2_unbiased(fake[i_f], real[i_r]))
    assert size == 10
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-8)


def test_kid_bad_input() -> None:
    with pytest.raises(ValueError, match="equal d"):
        kernel_inception_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="at least 2 rows"):
        kernel_inception_distance(torch.zeros(1, 3), torch.zeros(5, 3))


# ---------------------------------------------------------------- precision / recall
def test_precision_recall_on_a_hand_made_line() -> None:
    # real: x = 0..4 on a line; k=3 radii: 3, 2, 2, 2, 3
    real = torch.tensor([[float(i), 0.0] for i in range(5)])
    # fake: a tight cluster far along the line, plus points whose membership is computed below
    fake = torch.tensor([[2.0, 0.5], [-2.5, 0.0], [0.0, 3.5], [10.0, 0.0], [10.1, 0.0], [10.2, 0.0], [10.3, 0.0]])
    # (2, .5): 0.5 from x=2 (radius 2) -> in; (-2.5, 0): 2.5 from x=0 (radius 3) -> in;
    # (0, 3.5): 3.5 from x=0 (r 3), sqrt(13.25)=3.64 from x=1 (r 2) -> out; the x>=10 cluster is >= 6 away -> out
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == pytest.approx(2 / 7)
    # recall: the fake (2, .5) has distances 3.61, 4.53, 8.02, ... to the other fakes, so radius 8.02, and every
    # real point is within 2.06 of it -> recall 1
    assert recall == 1.0
    # the roles swap exactly: fake's precision against real is real's recall against fake
    assert precision_recall(fake, real, k=3) == (1.0, pytest.approx(2 / 7))


def brute_force_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def coverage(points, centres, r):
        d = np.linalg.norm(points[:, None] - centres[None], axis=-1)
        return float(np.mean((d <= r[None]).any(axis=1)))

    return coverage(fake, real, radii(real)), coverage(real, fake, radii(fake))


def test_precision_recall_equal_brute_force_with_chunking() -> None:
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(60, 6)), rng.normal(loc=0.7, scale=1.3, size=(45, 6))
    ours = precision_recall(torch.tensor(real), torch.tensor(fake), k=3, chunk=7)
    assert ours == pytest.approx(brute_force_precision_recall(real, fake, 3))
    assert 0.0 < ours[0] < 1.0 and 0.0 < ours[1] < 1.0  # the case is not degenerate


def test_precision_recall_bad_input() -> None:
    with pytest.raises(ValueError, match="more than k=3 rows"):
        precision_recall(torch.zeros(3, 2), torch.zeros(10, 2))
    with pytest.raises(ValueError, match="equal d"):
        precision_recall(torch.zeros(10, 2), torch.zeros(10, 3))


# ---------------------------------------------------------------- 2-D modes
def test_mode_metrics_on_hand_made_samples() -> None:
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    samples = torch.tensor([
        [0.05, 0.0], [0.0, -0.2], [0.25, 0.1],  # 3 high-quality at mode 0 (within 3 std = 0.3)
        [1.1, 0.0],  # 1 high-quality at mode 1
        [0.5, 0.5], [5.0, 5.0],  # low quality; mode 2 gets nothing
    ])
    found = mode_metrics(samples, centres, std=0.1)
    assert found["modes_covered"] == 2
    assert found["high_quality"] == pytest.approx(4 / 6)
    h = np.array([3 / 4, 1 / 4])
    assert found["mode_kl"] == pytest.approx(float(np.sum(h * np.log(3 * h))))
    assert mode_metrics(samples, centres, std=0.1, min_count=2)["modes_covered"] == 1


def test_mode_metrics_uniform_coverage_and_no_high_quality() -> None:
    centres = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    even = mode_metrics(centres.repeat(5, 1), centres, std=0.1)
    assert even == {"modes_covered": 2, "high_quality": 1.0, "mode_kl": 0.0}
    none = mode_metrics(torch.tensor([[2.0, 2.0]]), centres, std=0.1)
    assert none == {"modes_covered": 0, "high_quality": 0.0, "mode_kl": None}
    collapsed = mode_metrics(torch.zeros(4, 2), centres, std=0.1)
    assert collapsed["mode_kl"] == pytest.approx(math.log(2))


def test_mode_metrics_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        mode_metrics(torch.zeros(4, 3), torch.zeros(2, 2), std=0.1)
    with pytest.raises(ValueError, match="std > 0"):
        mode_metrics(torch.zeros(4, 2), torch.zeros(2, 2), std=0.0)
