"""Extragradient (Korpelevich 1976); with an Adam base optimizer this is ExtraAdam (Gidel et al., ICLR 2019).

One update of the moving players ``P`` from ``w_t``:

    w_{t+1/2} = w_t - eta * D(g(w_t; xi))              (extrapolation, fresh sample xi)
    w_{t+1}   = w_t - eta * D(g(w_{t+1/2}; xi'))       (update from w_t, fresh sample xi')

where ``D`` is the base optimizer's step (identity for plain SGD). All moving players extrapolate
together, then all take their update with gradients at the extrapolated joint point.

Adam moments: *every* gradient evaluated enters the base optimizer's state once, so the
extrapolation step also updates Adam's moments and step count (two base steps per update), as in
Gidel et al.'s ExtraAdam reference code. The parameters after the extrapolation are then put back
to ``w_t`` exactly (``copy_``) before the update step. Cost: 2 gradient evaluations per moving
player per update.
"""
from __future__ import annotations

from typing import Any

from .gda import RULES, UpdateRule
from .protocol import Grads


@RULES.register("extragradient")
class Extragradient(UpdateRule):
    """Stochastic extragradient / ExtraAdam on any game (see module doc)."""

    rule = "extragradient"

    def direction(self, names: tuple[str, ...], sample: Any) -> Grads:
        """The field estimate used at both half-steps: the plain stochastic gradient."""
        return self.gradient(names, sample)

    def update(self, names: tuple[str, ...]) -> None:
        start = self.save(names)
        self.apply(names, self.direction(names, self.draw()))
        at_extrapolated = self.direction(names, self.draw())
        self.restore(start)
        self.apply(names, at_extrapolated)
