"""Optimistic GDA as past extragradient (Popov 1980; Gidel et al. ICLR 2019; Daskalakis et al. ICLR 2018).

Extragradient whose extrapolation reuses the previous update instead of a new gradient, so one
gradient evaluation per moving player per update. With ``u_{t-1} = w_t - w_{t-1}`` the previous
update of a player (``-eta * g_{t-1/2}`` for plain SGD; the Adam step for Adam):

    w_{t+1/2} = w_t + u_{t-1}                           (extrapolation: replay the last update)
    w_{t+1}   = w_t - eta * D(g(w_{t+1/2}; xi))         (update from w_t)

With SGD this is exactly Popov's past extragradient, and the extrapolated points follow OGDA,
``y_{t+1} = y_t - 2 eta g(y_t) + eta g(y_{t-1})``. With Adam, each gradient enters the moments once
(the extrapolation touches no optimizer state) and the extrapolated points follow Optimistic
Adam, ``y_{t+1} = y_t - 2 eta a_t + eta a_{t-1}`` with ``a_t`` the Adam direction. The first update
of a player has no previous update and therefore no extrapolation. Between iterations the
parameters hold ``w_t`` (not the extrapolated point); the previous updates are part of the state.
"""
from __future__ import annotations

from typing import Any

import torch

from .gda import RULES, UpdateRule, clone_grads


@RULES.register("optimistic")
class Optimistic(UpdateRule):
    """Past extragradient / OGDA / Optimistic Adam (see module doc)."""

    rule = "optimistic"

    def __init__(self, game: Any, optimizers: dict[str, torch.optim.Optimizer], n_dis: int = 1) -> None:
        super().__init__(game, optimizers, n_dis)
        self.previous_update: dict[str, list[torch.Tensor]] = {}

    def update(self, names: tuple[str, ...]) -> None:
        start = self.save(names)
        with torch.no_grad():
            for name in names:
                if name in self.previous_update:
                    for p, u in zip(self.game.params(name), self.previous_update[name], strict=True):
                        p.add_(u)
        grads = self.fresh_grad(names)
        self.restore(start)
        self.apply(names, grads)
        for name in names:
            self.previous_update[name] = [p.detach() - w for p, w in zip(self.game.params(name), start[name])]

    def extra_state(self) -> dict[str, Any]:
        return {"previous_update": clone_grads(self.previous_update)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.previous_update = {
            name: [u.to(p.device, p.dtype) for u, p in zip(values, self.game.params(name), strict=True)]
            for name, values in state["previous_update"].items()
        }
