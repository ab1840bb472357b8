"""SVRE: stochastic variance reduced extragradient (Chavdarova, Gidel, Fleuret, Lacoste-Julien, NeurIPS 2019).

Extragradient on a finite-sum game whose field estimate at both half-steps is the SVRG estimate

    d_i(w) = g_i(w) - g_i(w_S) + mu,        mu = (1/n) sum_j g_j(w_S),

with the *same* sample ``i`` in both terms, ``w_S`` a snapshot of all players' parameters and
``mu`` the full mean gradient there. The estimate is unbiased and its variance vanishes as ``w``
and ``w_S`` approach the equilibrium, so SVRE converges where stochastic extragradient stalls at
a noise floor. At the snapshot itself ``d_i(w_S) = mu`` for every ``i``.

SVRE owns the finite sum: at each snapshot it asks the game for one (the GAN draws its ``noise_set`` noise vectors
then), keeps it until the next snapshot, draws every stochastic sample from it, and saves it in its state.

Snapshot refresh, checked before each iteration: ``"random"`` with probability ``1/epoch_length``
(a Bernoulli draw from the global torch RNG, as in the authors' code) or ``"epoch"`` every
``epoch_length`` iterations. The first iteration always takes a snapshot.

Cost (unit of :mod:`gan_bench.optim.gda`): 4 gradient evaluations per moving player per update
(2 at the current/extrapolated point, 2 at the snapshot), plus ``finite_sum_size`` per player for
each full gradient.
"""
from __future__ import annotations

from typing import Any

import torch

from ..registry import choice
from .extragradient import Extragradient
from .gda import RULES, GameOptimizerConfigError, clone_grads
from .protocol import FiniteSum, FiniteSumGame, Grads

REFRESH = ("random", "epoch")
Refresh = choice("Refresh", REFRESH)


@RULES.register("svre")
class SVRE(Extragradient):
    """Extragradient with SVRG field estimates (see module doc). Needs a finite-sum game."""

    rule = "svre"

    def __init__(
        self,
        game: Any,
        optimizers: dict[str, torch.optim.Optimizer],
        n_dis: int = 1,
        epoch_length: int = 100,
        refresh: Refresh = "random",
        noise_set: int = 0,
    ) -> None:
        if not isinstance(game, FiniteSumGame):
            raise GameOptimizerConfigError(f"rule 'svre' needs a finite-sum game; {type(game).__name__} is not one")
        if refresh not in REFRESH:
            raise GameOptimizerConfigError(
                f"refresh={refresh!r} is not valid; choose one of: {', '.join(REFRESH)}"
            )
        if int(epoch_length) != epoch_length or epoch_length < 1:
            raise GameOptimizerConfigError(
                f"epoch_length={epoch_length} is impossible: it must be an integer >= 1"
            )
        if noise_set < 0:
            raise GameOptimizerConfigError(f"noise_set={noise_set} is impossible: it must be >= 0 (0 = dataset size)")
        super().__init__(game, optimizers, n_dis)
        self.sum_size = game.finite_sum_size  # also checks that the game can form a finite sum
        self.epoch_length = int(epoch_length)
        self.refresh = str(refresh)
        self.noise_set = int(noise_set)
        self.finite_sum: FiniteSum | None = None
        self.snapshot: Grads | None = None
        self.mu: Grads = {}
        self.since_refresh = 0

    def refresh_snapshot(self) -> None:
        """A new finite sum from the game, ``w_S <- w`` for all players and ``mu <-`` the sum's mean gradient there."""
        players = tuple(self.game.players)
        self.finite_sum = self.game.finite_sum(self.noise_set)
        self.snapshot = self.save(players)
        self.mu = clone_grads(self.finite_sum.mean_grad(players))
        self._grad_evals += self.sum_size * len(players)
        self.since_refresh = 0

    def draw(self) -> Any:
        """A stochastic term of the current finite sum."""
        if self.finite_sum is None:
            self.refresh_snapshot()
        return self.finite_sum.sample()

    def begin_iteration(self) -> dict[str, float]:
        if self.snapshot is None:
            due = True
        elif self.refresh == "epoch":
            due = self.since_refresh >= self.epoch_length
        else:
            due = bool(torch.rand(()) < 1.0 / self.epoch_length)
        if due:
            self.refresh_snapshot()
        self.since_refresh += 1
        return {"svre_refresh": float(due)}

    def estimate(self, names: tuple[str, ...], sample: Any) -> Grads:
        """``g_i(w) - g_i(w_S) + mu`` for the players in ``names``, same sample ``i`` in both terms."""
        if self.snapshot is None:
            self.refresh_snapshot()
        current = self.save(tuple(self.game.players))
        self.restore(self.snapshot)
        there = self.gradient(names, sample)
        self.restore(current)
        here = self.gradient(names, sample)  # last, so a game's per-evaluation logs describe the current point
        return {
            name: [(g - gs) + m for g, gs, m in zip(here[name], there[name], self.mu[name], strict=True)]
            for name in names
        }

    def direction(self, names: tuple[str, ...], sample: Any) -> Grads:
        return self.estimate(names, sample)

    def extra_state(self) -> dict[str, Any]:
        return {
            "finite_sum": None if self.finite_sum is None else self.finite_sum.state_dict(),
            "snapshot": None if self.snapshot is None else clone_grads(self.snapshot),
            "mu": clone_grads(self.mu),
            "since_refresh": self.since_refresh,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        def like_params(values: Grads) -> Grads:
            return {
                name: [v.to(p.device, p.dtype) for v, p in zip(vs, self.game.params(name), strict=True)]
                for name, vs in values.items()
            }

        self.snapshot = None if state["snapshot"] is None else like_params(state["snapshot"])
        fs = state["finite_sum"]
        self.finite_sum = None if fs is None else self.game.restore_finite_sum(fs)
        self.mu = like_params(state["mu"])
        self.since_refresh = int(state["since_refresh"])
