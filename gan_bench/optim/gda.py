"""Gradient descent-ascent (GDA) and the machinery shared by every update rule.

A rule is a way of turning the game's vector field (each player's gradient of its own loss) into
parameter updates. Rules set ``p.grad`` and call the player's base optimizer (``torch.optim.SGD``
or ``Adam``), so TTUR learning rates, momentum and Adam moments come from torch unchanged.

Unit of ``grad_evals``: one player's gradient on one sample (minibatch). A ``game.grad(names, s)``
call counts ``len(names)``; a full pass over a finite sum (SVRE) counts ``finite_sum_size`` per player.

One iteration (``step()``) runs a schedule of updates, each a tuple of the players that move:

* alternating GDA: ``n_dis`` updates of D, then one of G, each on a fresh sample;
* the simultaneous family (simultaneous GDA, extragradient, optimistic, SVRE): ``n_dis`` updates of
  the rule, the first ``n_dis - 1`` restricted to D and the last one moving G and D together.

After ``step()``, ``p.grad`` holds the direction given to the base optimizer by the last update.
"""
from __future__ import annotations

import abc
from typing import Any, Sequence

import torch

from ..errors import ConfigError
from ..registry import Registry
from .protocol import Game, Grads


class GameOptimizerConfigError(ConfigError, ValueError):
    """An impossible game-optimizer setting (a ``ValueError`` and a gan-bench ``ConfigError``)."""


class GameOptimizer(abc.ABC):
    """A two-player game optimizer: ``step()`` performs one iteration; its state resumes bit-identically."""

    game: Game
    optimizers: dict[str, torch.optim.Optimizer]

    @property
    @abc.abstractmethod
    def grad_evals(self) -> int:
        """Gradient evaluations so far (one player's gradient on one sample each, see module doc)."""

    @abc.abstractmethod
    def step(self) -> dict[str, float]:
        """One iteration; returns at least ``{'grad_evals': evaluations during this iteration}``."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (besides the game's parameters and the RNG)."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` of an optimizer built with the same config."""


def clone_grads(tensors: Grads) -> Grads:
    """A detached copy of a ``{player: [tensor, ...]}`` dict."""
    return {name: [t.detach().clone() for t in ts] for name, ts in tensors.items()}


def copy_into(targets: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    """``target.copy_(value)`` for each pair, without autograd tracking (exact, keeps device and dtype)."""
    with torch.no_grad():
        for t, v in zip(targets, values, strict=True):
            t.copy_(v)


#: the update rules (config group ``optimizer/rule``); gan-bench passes the game, the players' base optimizers and n_dis
RULES = Registry("optimizer/rule", runtime=("game", "optimizers", "n_dis"))


class UpdateRule(GameOptimizer):
    """Base class of the update rules: schedule of updates, gradient counting, parameter save/restore."""

    rule: str = ""

    def __init__(self, game: Game, optimizers: dict[str, torch.optim.Optimizer], n_dis: int = 1) -> None:
        if n_dis < 1:
            raise GameOptimizerConfigError(f"n_dis={n_dis} is impossible: at least 1 discriminator update is needed")
        if "D" not in game.players:
            raise GameOptimizerConfigError(
                f"the game needs a player named 'D' (the maximising player); it has {game.players}"
            )
        missing = [name for name in game.players if name not in optimizers]
        if missing:
            raise GameOptimizerConfigError(f"no base optimizer for player(s) {missing}")
        self.game = game
        self.optimizers = optimizers
        self.n_dis = n_dis
        self.iteration = 0
        self._grad_evals = 0

    @property
    def grad_evals(self) -> int:
        return self._grad_evals

    def schedule(self) -> list[tuple[str, ...]]:
        """Simultaneous family: ``n_dis - 1`` D-only updates, then one update of all players."""
        return [("D",)] * (self.n_dis - 1) + [tuple(self.game.players)]

    @abc.abstractmethod
    def update(self, names: tuple[str, ...]) -> None:
        """One update of the rule, moving only the players in ``names``."""

    def step(self) -> dict[str, float]:
        before = self._grad_evals
        info = self.begin_iteration()
        for names in self.schedule():
            self.update(names)
        self.iteration += 1
        return {"grad_evals": float(self._grad_evals - before), **info}

    def begin_iteration(self) -> dict[str, float]:
        """Hook run before the updates of an iteration (SVRE refreshes its snapshot there)."""
        return {}

    # ---- helpers shared by the rules -------------------------------------------------------
    def gradient(self, names: Sequence[str], sample: Any) -> Grads:
        """``game.grad`` at the current parameters, counted in ``grad_evals``."""
        self._grad_evals += len(names)
        return self.game.grad(names, sample)

    def draw(self) -> Any:
        """A fresh sample of the game's randomness (SVRE draws from its finite sum instead)."""
        return self.game.sample()

    def fresh_grad(self, names: Sequence[str]) -> Grads:
        """Gradient of the players in ``names`` on a freshly drawn sample."""
        return self.gradient(names, self.draw())

    def apply(self, names: Sequence[str], direction: Grads) -> None:
        """Hand ``direction`` to each player's base optimizer as ``p.grad`` and take its step."""
        for name in names:
            for p, g in zip(self.game.params(name), direction[name], strict=True):
                p.grad = g.detach()
            self.optimizers[name].step()

    def save(self, names: Sequence[str]) -> Grads:
        """Copies of the current parameters of ``names``."""
        return {name: [p.detach().clone() for p in self.game.params(name)] for name in names}

    def restore(self, saved: Grads) -> None:
        """Put back parameters saved by :meth:`save`, exactly (``copy_``)."""
        for name, values in saved.items():
            copy_into(self.game.params(name), values)

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "iteration": self.iteration,
            "grad_evals": self._grad_evals,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            **self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("rule") != self.rule:
            raise GameOptimizerConfigError(
                f"cannot load the state of rule {state.get('rule')!r} into a {self.rule!r} optimizer"
            )
        self.iteration = int(state["iteration"])
        self._grad_evals = int(state["grad_evals"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.load_extra_state(state)

    def extra_state(self) -> dict[str, Any]:
        """Rule-specific state (previous updates, snapshots)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`extra_state`."""


@RULES.register("simultaneous")
class SimultaneousGDA(UpdateRule):
    """Simultaneous GDA: every moving player steps along its gradient at the same point ``(theta_t, phi_t)``."""

    rule = "simultaneous"

    def update(self, names: tuple[str, ...]) -> None:
        self.apply(names, self.fresh_grad(names))


@RULES.register("alternating")
class AlternatingGDA(SimultaneousGDA):
    """Alternating GDA: ``n_dis`` D steps, then one G step against the updated D, each on a fresh sample."""

    rule = "alternating"

    def schedule(self) -> list[tuple[str, ...]]:
        others = tuple(name for name in self.game.players if name != "D")
        return [("D",)] * self.n_dis + [others]
