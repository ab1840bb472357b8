"""Lookahead-minmax (Chavdarova, Pagliardini, Stich, Fleuret, Jaggi, ICLR 2021).

Wraps any update rule (the "fast" optimizer). Every ``k`` inner iterations, for both players
jointly:

    slow <- slow + alpha * (fast - slow);    fast <- slow

The inner optimizer's state (Adam moments, previous updates, SVRE snapshot) is kept across the
synchronisation, as in the paper. The slow weights start at the initial parameters.

Optional nested level ("super-slow" weights, the authors' ``lookahead_super_slow_k``): every
``k2`` inner iterations, right after the slow synchronisation,

    super <- super + alpha2 * (slow - super);    slow <- super;    fast <- super

``k2`` counts inner iterations like ``k`` (e.g. ``k=5, k2=5000``) and must be a multiple of ``k``.
Right after a synchronisation (``step`` a multiple of ``k``) the parameters equal the slow weights.
"""
from __future__ import annotations

from typing import Any

import torch

from .gda import GameOptimizer, GameOptimizerConfigError, clone_grads, copy_into


class Lookahead(GameOptimizer):
    """Lookahead-minmax on top of an inner game optimizer, optionally nested (see module doc)."""

    def __init__(self, inner: GameOptimizer, k: int, alpha: float, k2: int = 0, alpha2: float = 0.5) -> None:
        check_lookahead(k, alpha, k2, alpha2)
        if k == 0:
            raise GameOptimizerConfigError("lookahead.k=0 means Lookahead is off; use the inner optimizer directly")
        self.inner = inner
        self.game = inner.game
        self.optimizers = inner.optimizers
        self.k, self.alpha, self.k2, self.alpha2 = int(k), float(alpha), int(k2), float(alpha2)
        self.steps = 0
        self.slow = self._copy_params()
        self.super_slow = self._copy_params() if self.k2 else None

    def _copy_params(self) -> dict[str, list[torch.Tensor]]:
        return {name: [p.detach().clone() for p in self.game.params(name)] for name in self.game.players}

    @property
    def grad_evals(self) -> int:
        return self.inner.grad_evals

    def step(self) -> dict[str, float]:
        info = self.inner.step()
        self.steps += 1
        synced = self.steps % self.k == 0
        nested = bool(self.k2) and self.steps % self.k2 == 0
        with torch.no_grad():
            if synced:
                for name in self.game.players:
                    for slow, fast in zip(self.slow[name], self.game.params(name), strict=True):
                        slow.add_(fast - slow, alpha=self.alpha)
            if nested:
                for name in self.game.players:
                    for sup, slow in zip(self.super_slow[name], self.slow[name], strict=True):
                        sup.add_(slow - sup, alpha=self.alpha2)
                        slow.copy_(sup)
        if synced:
            for name in self.game.players:
                copy_into(self.game.params(name), self.slow[name])
        return {**info, "lookahead_sync": float(synced), "lookahead_sync2": float(nested)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "lookahead": {
                "k": self.k,
                "alpha": self.alpha,
                "k2": self.k2,
                "alpha2": self.alpha2,
                "steps": self.steps,
                "slow": clone_grads(self.slow),
                "super_slow": None if self.super_slow is None else clone_grads(self.super_slow),
            },
            "inner": self.inner.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        la = state.get("lookahead")
        if la is None:
            raise GameOptimizerConfigError("cannot load a state without Lookahead into a Lookahead optimizer")
        if (la["k"], la["k2"], la["super_slow"] is None) != (self.k, self.k2, self.super_slow is None):
            raise GameOptimizerConfigError(
                f"saved Lookahead has k={la['k']}, k2={la['k2']} but this optimizer has k={self.k}, k2={self.k2}"
            )
        self.inner.load_state_dict(state["inner"])
        self.steps = int(la["steps"])
        for name in self.game.players:
            copy_into(self.slow[name], la["slow"][name])
            if self.super_slow is not None:
                copy_into(self.super_slow[name], la["super_slow"][name])


def check_lookahead(k: int, alpha: float, k2: int, alpha2: float) -> None:
    """Reject impossible Lookahead settings with a readable ``ValueError``."""
    for key, value in (("k", k), ("k2", k2)):
        if int(value) != value or value < 0:
            raise GameOptimizerConfigError(
                f"lookahead.{key}={value} is impossible: it must be an integer >= 0 (0 = off)"
            )
    for key, value in (("alpha", alpha), ("alpha2", alpha2)):
        if not 0.0 < value <= 1.0:
            raise GameOptimizerConfigError(f"lookahead.{key}={value} is impossible: it must lie in (0, 1]")
    if k2 and not k:
        raise GameOptimizerConfigError(f"lookahead.k2={k2} needs the first level on: set lookahead.k > 0")
    if k2 and k2 % k:
        raise GameOptimizerConfigError(
            f"lookahead.k2={k2} must be a multiple of lookahead.k={k} (both count inner iterations)"
        )
