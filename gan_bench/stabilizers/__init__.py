"""Training stabilisers, one technique per file, each a small object the game's phases apply:

* input transforms (every discriminator input): :class:`~.instance_noise.InstanceNoise`;
* D terms, ``[K]`` added to the K discriminator losses: :class:`~.gradient_penalty.GradientPenalty`;
* parameter penalties, a scalar added to a player's loss: :class:`~.historical_averaging.HistoricalAveraging`;
* G terms, ``l_k -> l_k'`` before the aggregation: :class:`~.feature_matching.FeatureMatching`;
* the G phase's discriminator: :class:`~.unrolled.Unrolled`.

Minibatch discrimination and virtual batch norm are layers (gan_bench/models/); one-sided label smoothing is a loss
parameter (gan_bench/losses.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gan_bench.stabilizers.feature_matching import FeatureMatching, GTerm
from gan_bench.stabilizers.gradient_penalty import GradientPenalty
from gan_bench.stabilizers.historical_averaging import HistoricalAveraging
from gan_bench.stabilizers.instance_noise import InstanceNoise
from gan_bench.stabilizers.unrolled import Unrolled


@dataclass
class Stabilizers:
    """What the config's ``regularizer`` section switches on, as the objects the game's phases apply."""

    noise: InstanceNoise | None = None
    d_terms: list = field(default_factory=list)
    g_terms: list[GTerm] = field(default_factory=list)
    penalties: dict[str, HistoricalAveraging] = field(default_factory=dict)  # player -> parameter penalty
    unrolled: Unrolled | None = None

    @classmethod
    def from_config(cls, reg: Any, params: dict[str, list], d_lr: float, d_betas: tuple[float, float]) -> "Stabilizers":
        s = cls()
        if reg.instance_noise > 0:
            s.noise = InstanceNoise(reg.instance_noise, reg.instance_noise_anneal)
        if reg.gp != "none":
            s.d_terms.append(GradientPenalty(reg.gp, reg.gp_weight))
        if reg.feature_matching > 0:
            s.g_terms.append(FeatureMatching(reg.feature_matching, reg.feature_matching_only))
        if reg.historical_averaging > 0:
            s.penalties = {p: HistoricalAveraging(params[p], reg.historical_averaging) for p in ("G", "D")}
        if reg.unroll.steps > 0:
            s.unrolled = Unrolled(reg.unroll.steps, reg.unroll.lr or d_lr, reg.unroll.method, d_betas)
        return s

    @property
    def needs_features(self) -> bool:
        return any(t.needs_features for t in self.g_terms)
