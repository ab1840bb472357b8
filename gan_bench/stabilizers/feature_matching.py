"""Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.1): the generator matches
the mean of each discriminator's last hidden layer on real data, ``||E f_k(x) - E f_k(G(z))||^2``, one term per
discriminator (``stabilizers.feature_matching.weight`` = its weight; ``stabilizers.feature_matching.only`` = the
generator minimises only this term)."""
from __future__ import annotations

from torch import Tensor

from gan_bench import distributed
from gan_bench.stabilizers.base import STABILIZERS, GTermContext, Stabilizer


@STABILIZERS.register("feature_matching")
class FeatureMatching(Stabilizer):
    """A G term: ``l_k -> l_k + weight * fm_k`` (or ``weight * fm_k`` alone with ``only``); weight = 0: off."""

    needs_features = True

    def __init__(self, weight: float = 0.0, only: bool = False):
        if weight < 0:
            raise ValueError(f"weight={weight} is impossible: it must be >= 0 (0 = off)")
        if only and weight == 0:
            raise ValueError("only=true needs weight > 0 (weight=0 switches feature matching off)")
        self.weight, self.only = weight, bool(only)
        self.active = weight > 0

    def g_term(self, losses: Tensor, ctx: GTermContext) -> Tensor:
        # data-parallel: the means over the global batch (the ranks' average), this rank's gradient path
        real_mean = distributed.mean(ctx.real_out.features.detach().mean(1))
        fm = (real_mean - distributed.straight_through_mean(ctx.fake_out.features.mean(1))).pow(2).sum(-1)
        ctx.log("g/feature_matching", fm)
        return self.weight * fm if self.only else losses + self.weight * fm
