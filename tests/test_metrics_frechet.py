"""Fréchet distance (eigen route) against scipy and closed forms; streaming moments against numpy; stats files."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_bench.metrics import MetricsError, StreamingMoments, frechet_distance, load_statistics, save_statistics


def scipy_frechet(mu1, s1, mu2, s2) -> float:
    """The reference formula: scipy's sqrtm of the product, real part (what pytorch-fid computes)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def random_spd(rng: np.random.Generator, d: int, n: int) -> np.ndarray:
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d)
    return np.cov(x, rowvar=False)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_eigen_route_equals_scipy_sqrtm(d: int) -> None:
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_spd(rng, d, 4 * d), random_spd(rng, d, 4 * d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-8)


def test_diagonal_covariances_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # = 5 + 1 + 1 + 6.25
    assert expected == pytest.approx(13.25)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-12)


def test_identical_statistics_give_zero_even_when_singular() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 20))  # rank-4 covariance in 20 dimensions
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-10


def test_accepts_torch_tensors_and_is_symmetric_in_its_arguments() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = random_spd(rng, 8, 30), random_spd(rng, 8, 30)
    forward = frechet_distance(torch.tensor(mu1), torch.tensor(s1), mu2, s2)
    assert forward == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-10)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m1, s1, m2, s2: (m1, s1, m2[:-1], s2), "same length"),
        (lambda m1, s1, m2, s2: (m1, s1, m2, s2[:-1]), "sigma2 must be"),
        (lambda m1, s1, m2, s2: (m1, s1 + np.triu(np.ones_like(s1), 1), m2, s2), "not symmetric"),
        (lambda m1, s1, m2, s2: (m1, s1 - 10 * np.eye(len(m1)), m2, s2), "not positive semi-definite"),
        (lambda m1, s1, m2, s2: (m1 * np.nan, s1, m2, s2), "NaN"),
    ],
)
def test_bad_inputs_raise_a_readable_error(mutate, message: str) -> None:
    rng = np.random.default_rng(2)
    args = (rng.normal(size=4), random_spd(rng, 4, 10), rng.normal(size=4), random_spd(rng, 4, 10))
    with pytest.raises(ValueError, match=message):
        frechet_distance(*mutate(*args))


def test_streaming_moments_equal_numpy_mean_and_cov() -> None:
    torch.manual_seed(0)
    x = torch.randn(257, 12, dtype=torch.float64) * 3 + 100  # large offset: the merge must not lose precision
    moments = StreamingMoments()
    for chunk in x.split([1, 100, 7, 149]):
        moments.update(chunk)
    mu, sigma = moments.numpy()
    assert moments.n == 257
    np.testing.assert_allclose(mu, x.numpy().mean(0), rtol=1e-13)
    np.testing.assert_allclose(sigma, np.cov(x.numpy(), rowvar=False), rtol=1e-10, atol=1e-12)


def test_streaming_moments_reject_bad_features() -> None:
    moments = StreamingMoments()
    with pytest.raises(ValueError, match="at least 2"):
        _ = moments.covariance
    moments.update(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="dimension changed"):
        moments.update(torch.zeros(3, 5))
    moments.update(torch.full((2, 4), float("nan")))  # reported when the moments are read (no sync per batch)
    moments.update(torch.ones(3, 4))  # a later finite batch does not hide it
    for read in (lambda: moments.mean, lambda: moments.covariance, moments.numpy):
        with pytest.raises(ValueError, match="NaN"):
            read()


def test_statistics_file_round_trip_and_pytorch_fid_format(tmp_path) -> None:
    mu, sigma = np.arange(3.0), np.eye(3)
    path = save_statistics(tmp_path / "s.npz", mu, sigma, {"n": 7})
    m, s, protocol = load_statistics(path)
    np.testing.assert_array_equal(m, mu)
    np.testing.assert_array_equal(s, sigma)
    assert protocol == {"n": 7}
    np.savez(tmp_path / "pf.npz", mu=mu, sigma=sigma)  # what pytorch-fid --save-stats writes
    assert load_statistics(tmp_path / "pf.npz")[2] == {}


def test_bad_statistics_files(tmp_path) -> None:
    np.savez(tmp_path / "nokey.npz", mean=np.zeros(2))
    with pytest.raises(ValueError, match="no mu or sigma"):
        load_statistics(tmp_path / "nokey.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(2), sigma=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"mu must be \[d\]"):
        load_statistics(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        load_statistics(tmp_path / "junk.npz")
    with pytest.raises(MetricsError, match="does not exist"):
        load_statistics(tmp_path / "missing.npz")


def test_prepared_reference_equals_the_one_shot_distance_and_reuses_its_square_root(monkeypatch) -> None:
    from gan_bench.metrics import frechet

    rng = np.random.default_rng(4)
    a, b, c = (rng.normal(size=(60, 12)) for _ in range(3))
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b, c)]
    ref = frechet.FrechetReference(*stats[0])
    calls = []
    real_eigh = frechet._psd_eigh
    monkeypatch.setattr(frechet, "_psd_eigh", lambda s, name: calls.append(name) or real_eigh(s, name))
    for mu, sigma in stats[1:]:
        assert ref.distance(mu, sigma) == pytest.approx(frechet_distance(*stats[0], mu, sigma), rel=1e-12)
        covmean = scipy.linalg.sqrtm(stats[0][1] @ sigma).real  # and the reference way
        want = ((stats[0][0] - mu) ** 2).sum() + np.trace(stats[0][1] + sigma - 2 * covmean)
        assert ref.distance(mu, sigma) == pytest.approx(want, rel=1e-8)
    # per distance through the prepared reference: one eigh (the product); the one-shot function needs two
    assert calls.count("sigma1") == 2 and calls.count("sigma2") == 6


def test_save_statistics_keeps_the_old_file_when_a_write_fails(tmp_path, monkeypatch) -> None:
    """Written through gan_bench.files.atomic_write: a full disk leaves the previous file intact and no temporary."""
    import errno

    from gan_bench.files import WriteError

    path = save_statistics(tmp_path / "s.npz", np.zeros(2), np.eye(2), {"n": 3})

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(WriteError, match="no space left on the device while writing"):
        save_statistics(path, np.ones(2), np.eye(2))
    assert load_statistics(path)[2] == {"n": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]
