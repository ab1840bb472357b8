"""GAN losses on logits, one value per discriminator.

``d_loss(real [K, B], fake [K, B]) -> [K]`` is what each discriminator minimises and
``g_loss(fake [K, B]) -> [K]`` are the generator's per-discriminator losses l_k that the
aggregation combines (for ``ns``, l_k = -E_z log D_k(G(z)) as in the multi-discriminator paper).
``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016): only the real target moves,
the fake target stays 0.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _bce_real(real: Tensor, target: float) -> Tensor:
    # BCE(sigmoid(r), t) = t * softplus(-r) + (1 - t) * softplus(r)
    return target * F.softplus(-real) + (1.0 - target) * F.softplus(real)


def ns_d(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    return (_bce_real(real, real_label) + F.softplus(fake)).mean(-1)


def ns_g(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean(-1)  # -log sigmoid(f)


def minimax_g(fake: Tensor) -> Tensor:
    return -F.softplus(fake).mean(-1)  # log(1 - sigmoid(f))


def ls_d(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    return 0.5 * ((real - real_label) ** 2 + fake ** 2).mean(-1)


def ls_g(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1.0) ** 2).mean(-1)


def hinge_d(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    return (F.relu(1.0 - real) + F.relu(1.0 + fake)).mean(-1)  # label smoothing does not apply (config rejects it)


def wasserstein_d(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    return (fake - real).mean(-1)


def critic_g(fake: Tensor) -> Tensor:
    return -fake.mean(-1)


LOSSES: dict[str, tuple[Callable[..., Tensor], Callable[[Tensor], Tensor]]] = {
    "ns": (ns_d, ns_g),
    "minimax": (ns_d, minimax_g),
    "ls": (ls_d, ls_g),
    "hinge": (hinge_d, critic_g),
    "wasserstein": (wasserstein_d, critic_g),
}


def get_loss(name: str) -> tuple[Callable[..., Tensor], Callable[[Tensor], Tensor]]:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]


def d_accuracy(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Per-discriminator accuracy on real (logit > 0) and on fake (logit < 0), each [K]."""
    return (real > 0).float().mean(-1), (fake < 0).float().mean(-1)
