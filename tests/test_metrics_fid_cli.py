"""`gan-bench fid` on statistics files and its one-line errors; Inception weight resolution errors (no network)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_bench.metrics import fid_cli, frechet_distance, resolve_weights, save_statistics, weights_cli
from gan_bench.metrics import inception as inception_module
from gan_bench.metrics.inception import CONVERTED_WEIGHTS_NAME, FID_WEIGHTS_NAME


def write_stats(path, seed: int, d: int = 6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, d)) + seed
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    np.savez(path, mu=mu, sigma=sigma)
    return mu, sigma


def test_fid_cli_on_two_npz_files_equals_scipy_route(tmp_path, capsys) -> None:
    mu1, s1 = write_stats(tmp_path / "a.npz", 1)
    mu2, s2 = write_stats(tmp_path / "b.npz", 2)
    assert fid_cli([str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--device", "cpu"]) == 0
    printed = float(capsys.readouterr().out.split("FID:")[1])
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    assert printed == pytest.approx(reference, rel=1e-5)  # printed with 6 decimals


def test_fid_of_identical_statistics_prints_zero_not_minus_zero(tmp_path, capsys) -> None:
    mu, sigma = write_stats(tmp_path / "a.npz", 0)  # its distance to itself rounds to -7e-15 in float64
    assert str(frechet_distance(mu, sigma, mu, sigma)) == "0.0"
    assert fid_cli([str(tmp_path / "a.npz"), str(tmp_path / "a.npz"), "--device", "cpu"]) == 0
    assert capsys.readouterr().out == "FID: 0.000000\n"


def test_fid_cli_warns_once_when_a_set_is_smaller_than_the_dimension(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    for name, n in (("large", 40), ("small", 5)):
        x = rng.normal(size=(n, 6))
        save_statistics(tmp_path / f"{name}.npz", x.mean(0), np.cov(x, rowvar=False), {"n": n})
    large, small = str(tmp_path / "large.npz"), str(tmp_path / "small.npz")
    assert fid_cli([large, small, "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("FID: ")  # warned, not failed
    assert out.err == (f"warning: FID from 5 samples of {small} in 6 dimensions is not comparable to other values: "
                       "the covariance is rank-deficient (it needs more than 6 samples per set)\n")
    assert fid_cli([large, large, "--device", "cpu"]) == 0
    assert capsys.readouterr().err == ""


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_fid_cli_errors(tmp_path, capsys) -> None:
    write_stats(tmp_path / "ok.npz", 0)
    ok = str(tmp_path / "ok.npz")
    assert fid_cli([ok, str(tmp_path / "missing")]) == 1
    assert "does not exist" in one_line_error(capsys)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    assert fid_cli([str(tmp_path / "empty"), ok]) == 1
    assert "contains no images" in one_line_error(capsys)
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3))
    assert fid_cli([ok, str(tmp_path / "bad.npz")]) == 1
    assert "no mu or sigma" in one_line_error(capsys)
    np.savez(tmp_path / "other_d.npz", mu=np.zeros(3), sigma=np.eye(3))
    assert fid_cli([ok, str(tmp_path / "other_d.npz")]) == 1
    assert "same length" in one_line_error(capsys)
    (tmp_path / "x.txt").write_text("x")
    assert fid_cli([ok, str(tmp_path / "x.txt")]) == 1
    assert "neither a folder" in one_line_error(capsys)
    assert fid_cli([ok]) == 1
    assert "PATH1 PATH2" in one_line_error(capsys)
    assert fid_cli([ok, ok, "--device", "gpu7"]) == 1
    assert "bad --device" in one_line_error(capsys)


def test_fid_cli_save_stats_of_npz_copies_it(tmp_path, capsys) -> None:
    mu, sigma = write_stats(tmp_path / "a.npz", 3)
    assert fid_cli([str(tmp_path / "a.npz"), "--save-stats", str(tmp_path / "copy.npz")]) == 0
    with np.load(tmp_path / "copy.npz") as f:
        np.testing.assert_array_equal(f["mu"], mu)
        np.testing.assert_array_equal(f["sigma"], sigma)


def test_no_weights_source_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(inception_module, "fid_helper_model_path", lambda: None)
    with pytest.raises(ValueError) as info:
        resolve_weights(hub_dir=tmp_path, allow_download=False)
    message = str(info.value)
    assert FID_WEIGHTS_NAME in message and CONVERTED_WEIGHTS_NAME in message and str(tmp_path) in message
    assert "--inception-weights" in message and "\n" not in message


def test_weights_cli_reports_missing_weights(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(inception_module, "fid_helper_model_path", lambda: None)
    assert weights_cli(["--no-download", "--hub-dir", str(tmp_path)]) == 1
    assert FID_WEIGHTS_NAME in one_line_error(capsys)


def test_explicit_weights_path_must_exist_and_install_checks_hash(tmp_path, capsys) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        resolve_weights(tmp_path / "nothing.pth")
    fake = tmp_path / FID_WEIGHTS_NAME
    fake.write_bytes(b"not the weights")
    assert weights_cli(["--path", str(fake), "--hub-dir", str(tmp_path / "hub"), "--no-download"]) == 1
    assert "is not pt_inception-2015-12-05-6726825d.pth" in one_line_error(capsys)
    assert not (tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_NAME).exists()


def test_a_folder_shows_its_progress_on_stderr(tmp_path, capsys, monkeypatch) -> None:
    """``gan-bench fid`` on a folder reports the images measured so far (stderr; a bar on a terminal): the count
    reaches the folder's size; the network is replaced by a stand-in that only consumes the batches."""
    from types import SimpleNamespace

    from PIL import Image

    import gan_bench.metrics.fid as fid_module

    for i in range(10):
        Image.fromarray(np.full((8, 8, 3), i * 20, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    seen = []

    def consume(batches, net, device):
        seen.extend(len(b) for b in batches)
        return SimpleNamespace(numpy=lambda: (np.zeros(2), np.eye(2)), n=sum(seen))

    monkeypatch.setattr(fid_module, "inception_moments", consume)
    net = SimpleNamespace(weights=SimpleNamespace(protocol=dict))
    mu, sigma, protocol = fid_module._path_statistics(str(tmp_path), lambda: net, 4, torch.device("cpu"))
    assert seen == [4, 4, 2] and protocol["n"] == 10
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(f"features of {tmp_path}")]
    assert lines[0] == f"features of {tmp_path}: 4/10 images" and lines[-1] == f"features of {tmp_path}: 10/10 images"
