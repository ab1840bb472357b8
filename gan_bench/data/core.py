"""Dataset containers and the registry that builds them from ``cfg.dataset``."""
from __future__ import annotations

import json
import logging
import math
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from gan_bench.data.stacked_mnist import load_stacked_mnist
from gan_bench.data.streaming import StreamingData
from gan_bench.errors import DataError
from gan_bench.registry import choice

log = logging.getLogger("gan_bench")


def _ring8(scale: float) -> torch.Tensor:
    t = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return (scale * torch.stack([t.cos(), t.sin()], 1)).float()


def _grid25(scale: float) -> torch.Tensor:
    v = (torch.arange(5, dtype=torch.float32) - 2) * scale
    return torch.cartesian_prod(v, v)


#: the 2-D Gaussian mixtures: name -> mode centres as a function of the scale
MIXTURES = {"ring8": _ring8, "grid25": _grid25}
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar10_64", "svhn", "stl10", "celeba",
                  "image_folder", "stacked_mnist")
DatasetName = choice("DatasetName", IMAGE_DATASETS + tuple(MIXTURES))


class InMemoryData:
    """A whole dataset as one tensor on the training device; batches are drawn by index.

    Images are stored as uint8 [N, C, H, W] (CIFAR-10 is 150 MB) and converted to float in [-1, 1]
    per batch; 2-D points are stored as float [N, 2]. Indices are drawn with replacement from the
    global torch RNG of the data's device, so a run is reproducible and resumes exactly.
    """

    streaming = False

    def __init__(self, x: torch.Tensor, labels: torch.Tensor | None, *, key: str, flip: bool = False,
                 skipped: list[str] | None = None):
        self.x, self.labels, self.key, self.flip = x, labels, key, flip
        self.kind = "points" if x.dtype.is_floating_point and x.dim() == 2 else "image"
        self.skipped = list(skipped or [])  # image files left out as unreadable (dataset.on_bad_file=skip)

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device) -> "InMemoryData":
        self.x = self.x.to(device)
        self.labels = None if self.labels is None else self.labels.to(device)
        return self

    def sample_indices(self, batch_size: int) -> torch.Tensor:
        return torch.randint(len(self), (batch_size,), device=self.device)

    def get(self, idx: torch.Tensor, flip_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Float batch for the given indices; ``flip_mask`` (bool [B]) flips those images horizontally."""
        x = self.x[idx]
        if self.kind == "points":
            return x
        x = x.float().div_(127.5).sub_(1.0)
        if flip_mask is not None:
            x = torch.where(flip_mask[:, None, None, None], x.flip(-1), x)
        return x

    def chunks(self, size: int) -> Iterator[torch.Tensor]:
        """All examples in order, as float batches (for full gradients and reference statistics)."""
        for start in range(0, len(self), size):
            yield self.get(torch.arange(start, min(start + size, len(self)), device=self.device))


def mixture_centres(name: str, scale: float) -> torch.Tensor:
    """Mode centres of the 2-D toys: ring8 (8 on a circle of radius ``scale``), grid25 (5x5 grid, spacing ``scale``)."""
    if name not in MIXTURES:
        raise ValueError(f"no mixture named {name!r}; choose one of: {', '.join(MIXTURES)}")
    return MIXTURES[name](scale)


def _resize_uint8(x: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize uint8 [N, C, H, W] images in float and round back (antialiased when shrinking)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = []
    for chunk in x.split(2048):
        y = F.interpolate(chunk.float(), size=(size, size), mode=mode, align_corners=False,
                          antialias=size < chunk.shape[-1])
        out.append(y.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def _fit_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (x.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    raise DataError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")


_PRELOADED: dict[str, InMemoryData | StreamingData] = {}


def _preload_key(cfg: Any, split: str, batch_size: int) -> str:
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if OmegaConf.is_config(cfg) else dict(cfg)
    return json.dumps([tree, split, batch_size], sort_keys=True, default=str)


def preload(cfg: Any, *, split: str = "train", batch_size: int = 64) -> None:
    """Load a dataset now (e.g. before a run's folder is created, so that missing or corrupt data writes nothing);
    the next :func:`load_dataset` with the same arguments in this process returns it."""
    _PRELOADED[_preload_key(cfg, split, batch_size)] = load_dataset(cfg, split=split, batch_size=batch_size)


def load_dataset(cfg: Any, *, split: str = "train", batch_size: int = 64) -> InMemoryData | StreamingData:
    """Build the dataset named by ``cfg.name`` (see conf/dataset/)."""
    from gan_bench.data import sources

    key = _preload_key(cfg, split, batch_size)
    if key in _PRELOADED:
        return _PRELOADED.pop(key)
    name = cfg.name
    if name in MIXTURES:
        # The dataset is the same for every training seed: it is drawn from its own generator.
        g = torch.Generator().manual_seed(1234 if split == "train" else 4321)
        centres = mixture_centres(name, cfg.scale)
        which = torch.randint(len(centres), (cfg.n_points,), generator=g)
        x = centres[which] + cfg.std * torch.randn(cfg.n_points, 2, generator=g)
        return InMemoryData(x, which, key=f"{name}-{split}-s{cfg.scale}-std{cfg.std}-n{cfg.n_points}")
    key = f"{name}-{split}-{cfg.resolution}px-{cfg.channels}ch"
    if not cfg.in_memory and name in sources.STREAMABLE:
        ds = sources.streaming_source(cfg, split)
        return StreamingData(ds, key=key, shape=(cfg.channels, cfg.resolution, cfg.resolution), batch_size=batch_size,
                             on_bad_file=str(cfg.get("on_bad_file", "error")))
    if name == "stacked_mnist":  # three MNIST digits per image, read from MNIST's own sources
        x, y, skipped = (*load_stacked_mnist(cfg, split), [])
    else:
        x, y, skipped = sources.load_uint8(cfg, split)
    x = _fit_channels(x, cfg.channels)
    x = _resize_uint8(x, cfg.resolution, mode="bicubic" if name == "cifar10_64" else "bilinear")
    if cfg.max_images:
        x, y = x[: cfg.max_images], None if y is None else y[: cfg.max_images]
        key += f"-first{cfg.max_images}"
    return InMemoryData(x.contiguous(), y, key=key, flip=cfg.flip, skipped=skipped)
