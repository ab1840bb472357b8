"""GAN losses on logits, one value per discriminator (config group ``loss``).

A loss is an object with ``d(real [K, B], fake [K, B]) -> [K]``, what each discriminator minimises, and
``g(fake [K, B]) -> [K]``, the generator's per-discriminator losses l_k that the aggregation combines (for ``ns``,
l_k = -E_z log D_k(G(z)) as in the multi-discriminator paper). ``real_label`` < 1 is one-sided label smoothing
(Salimans et al. 2016): only the real target moves, the fake target stays 0; it exists for the losses with a target
(ns, minimax, ls), so ``loss=hinge loss.real_label=0.9`` is refused by the config (hinge has no such key).

Your own loss: subclass :class:`GANLoss` (or write any class with these two methods) and point ``loss._target_`` at it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_bench.errors import ConfigError
from gan_bench.registry import Registry

Tensor = torch.Tensor
LOSSES = Registry("loss")


class GANLoss:
    """Base class: ``d`` and ``g`` map logits ``[K, B]`` to one loss per discriminator ``[K]``."""

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        raise NotImplementedError

    def g(self, fake: Tensor) -> Tensor:
        raise NotImplementedError


class _Smoothable(GANLoss):
    def __init__(self, real_label: float = 1.0):
        if not 0.0 < real_label <= 1.0:
            raise ConfigError(f"real_label={real_label} is impossible: it must lie in (0, 1] "
                              "(0.9 = one-sided smoothing)")
        self.real_label = float(real_label)


def _bce_real(real: Tensor, target: float) -> Tensor:
    # BCE(sigmoid(r), t) = t * softplus(-r) + (1 - t) * softplus(r)
    return target * F.softplus(-real) + (1.0 - target) * F.softplus(real)


def ns_d(real: Tensor, fake: Tensor, real_label: float = 1.0) -> Tensor:
    return (_bce_real(real, real_label) + F.softplus(fake)).mean(-1)


@LOSSES.register("ns")
class NonSaturating(_Smoothable):
    """Non-saturating: D maximises log D(x) + log(1 - D(G(z))), G minimises -log D(G(z))."""

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        return ns_d(real, fake, self.real_label)

    def g(self, fake: Tensor) -> Tensor:
        return F.softplus(-fake).mean(-1)  # -log sigmoid(f)


@LOSSES.register("minimax")
class Minimax(NonSaturating):
    """Minimax (saturating): G minimises log(1 - D(G(z)))."""

    def g(self, fake: Tensor) -> Tensor:
        return -F.softplus(fake).mean(-1)  # log(1 - sigmoid(f))


@LOSSES.register("ls")
class LeastSquares(_Smoothable):
    """Least squares (Mao et al. 2017), a = 0, b = c = 1."""

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        return 0.5 * ((real - self.real_label) ** 2 + fake ** 2).mean(-1)

    def g(self, fake: Tensor) -> Tensor:
        return 0.5 * ((fake - 1.0) ** 2).mean(-1)


@LOSSES.register("hinge")
class Hinge(GANLoss):
    """Hinge (Lim & Ye 2017; Miyato et al. 2018); G minimises -D(G(z))."""

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        return (F.relu(1.0 - real) + F.relu(1.0 + fake)).mean(-1)

    def g(self, fake: Tensor) -> Tensor:
        return -fake.mean(-1)


@LOSSES.register("wasserstein")
class Wasserstein(Hinge):
    """Wasserstein (Arjovsky et al. 2017); pair it with WGAN-GP (stabilizers.gradient_penalty.kind=wgan_gp)."""

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        return (fake - real).mean(-1)


def d_accuracy(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Per-discriminator accuracy on real (logit > 0) and on fake (logit < 0), each [K]."""
    return (real > 0).float().mean(-1), (fake < 0).float().mean(-1)
