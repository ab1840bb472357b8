"""Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.1): the generator matches
the mean of each discriminator's last hidden layer on real data, ``||E f_k(x) - E f_k(G(z))||^2``, one term per
discriminator (``regularizer.feature_matching`` = its weight; ``regularizer.feature_matching_only`` = the generator
minimises only this term)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from gan_bench import distributed

if TYPE_CHECKING:
    from gan_bench.game import DOut, GANGame


class GTerm:
    """A G-phase term maps the K generator losses ``l_k`` to new ones before the aggregation."""

    needs_features = False  # True: the shared forward must return the discriminators' features


class FeatureMatching(GTerm):
    """``l_k -> l_k + weight * fm_k`` (or ``weight * fm_k`` alone with ``only``)."""

    needs_features = True

    def __init__(self, weight: float, only: bool = False):
        self.weight, self.only = weight, only

    def __call__(self, game: "GANGame", losses: Tensor, real: "DOut", fake: "DOut") -> Tensor:
        # data-parallel: the means over the global batch (the ranks' average), this rank's gradient path
        real_mean = distributed.mean(real.features.detach().mean(1))
        fm = (real_mean - distributed.straight_through_mean(fake.features.mean(1))).pow(2).sum(-1)
        game.last["g/feature_matching"] = fm.detach()
        return self.weight * fm if self.only else losses + self.weight * fm
