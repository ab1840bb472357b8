"""Historical averaging (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.3): each player pays
``weight * ||theta - mean of its past values||^2`` (``stabilizers.historical_averaging.weight``)."""
from __future__ import annotations

import torch
from torch import Tensor

from gan_bench.stabilizers.base import STABILIZERS, PenaltyContext, SetupContext, Stabilizer


class HistoricalAverage:
    """Historical averaging (Salimans et al. 2016): penalty ‖θ − (1/t) Σ_{i≤t} θ_i‖².

    The running mean covers every parameter value seen so far *including the current one*: it is
    seeded with the values at construction (t = 1, so the first penalty is 0), and :meth:`update`,
    called after each optimizer step, folds the new values in. The mean is a constant in the
    penalty's graph; the penalty is differentiable w.r.t. the current parameters.

    With ``stacked=True`` the parameters carry a leading K dimension (the vectorised
    discriminators) and :meth:`penalty` returns one value per discriminator, ``[K]``; otherwise a
    scalar summed over all parameters.
    """

    def __init__(self, params: list[Tensor], *, stacked: bool = False) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("HistoricalAverage needs at least one parameter tensor")
        self.stacked = stacked
        if stacked:
            ks = {p.shape[0] if p.dim() > 0 else None for p in self.params}
            if len(ks) != 1 or None in ks:
                raise ValueError("stacked parameters must share one leading K dimension, "
                                 f"got sizes {sorted(map(str, ks))}")
        self.mean = [p.detach().clone() for p in self.params]
        self.count = 1

    def penalty(self) -> Tensor:
        """‖θ − mean‖² summed over parameters (per discriminator when ``stacked``)."""
        if self.stacked:
            return sum((p - m).pow(2).reshape(p.shape[0], -1).sum(dim=1) for p, m in zip(self.params, self.mean))
        return sum((p - m).pow(2).sum() for p, m in zip(self.params, self.mean))

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameter values into the running mean (t ← t + 1)."""
        self.count += 1
        for p, m in zip(self.params, self.mean):
            m.add_((p.detach() - m) / self.count)

    def state_dict(self) -> dict:
        return {"mean": [m.clone() for m in self.mean], "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        means, count = state["mean"], int(state["count"])
        if len(means) != len(self.params):
            raise ValueError(f"state has {len(means)} running means for {len(self.params)} parameters")
        for p, m in zip(self.params, means):
            if m.shape != p.shape:
                raise ValueError(f"running mean of shape {tuple(m.shape)} does not match parameter {tuple(p.shape)}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.mean = [m.detach().to(device=p.device, dtype=p.dtype).clone() for p, m in zip(self.params, means)]
        self.count = count


@STABILIZERS.register("historical_averaging")
class HistoricalAveraging(Stabilizer):
    """A parameter penalty of both players: ``weight * ||theta - running mean||^2`` (a scalar each), the running means
    folded in after each step and kept in the checkpoint; weight = 0: off."""

    PLAYERS = ("G", "D")

    def __init__(self, weight: float = 0.0):
        if weight < 0:
            raise ValueError(f"weight={weight} is impossible: it must be >= 0 (0 = off)")
        self.weight = weight
        self.active = weight > 0
        self.averages: dict[str, HistoricalAverage] = {}

    def setup(self, ctx: SetupContext) -> None:
        self.averages = {p: HistoricalAverage(ctx.params[p]) for p in self.PLAYERS}

    def penalty(self, ctx: PenaltyContext) -> Tensor:
        return self.weight * self.averages[ctx.player].penalty()

    def after_step(self) -> None:
        for average in self.averages.values():
            average.update()

    def state_dict(self) -> dict:
        return {p: a.state_dict() for p, a in self.averages.items()}

    def load_state_dict(self, state: dict) -> None:
        for p, a in self.averages.items():
            a.load_state_dict(state[p])
