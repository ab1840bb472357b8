"""The game protocol: a two-player differentiable game seen as a vector field.

Every game optimizer in :mod:`gan_bench.optim` is a rule on this field. A game exposes

* ``players``: ordered player names, e.g. ``("G", "D")``;
* ``params(name)``: the player's parameters (leaf tensors updated in place);
* ``sample()``: draws the randomness of one stochastic gradient evaluation (a minibatch: real
  indices and noise). It only uses the global torch RNG, so runs are reproducible and resumable;
* ``grad(names, sample)``: for each named player, the gradient of that player's own loss with
  respect to its own parameters, at the current parameter values, using ``sample``. It returns
  ``{name: [tensor, ...]}`` aligned with ``params(name)`` and never touches ``.grad``;
* for finite-sum games (SVRE), subclasses of :class:`FiniteSumGame`: ``finite_sum()``, the finite sum whose mean
  gradient SVRE takes at each snapshot (a game may draw part of it anew, e.g. the GAN's noise vectors), and
  ``finite_sum_size``, the minibatch evaluations of one full pass. SVRE owns the finite sum it is given: it keeps
  it until the next snapshot and saves it in its state.

The GAN of :mod:`gan_bench.game` and the toy games of :mod:`gan_bench.optim.toy_games` both
implement it, so every optimizer works with every loss, aggregation and number of discriminators.
"""
from __future__ import annotations

import abc
from typing import Any, Protocol, Sequence

import torch

Grads = dict[str, list[torch.Tensor]]


class Game(Protocol):
    players: tuple[str, ...]

    def params(self, name: str) -> list[torch.Tensor]: ...

    def sample(self) -> Any: ...

    def grad(self, names: Sequence[str], sample: Any) -> Grads: ...


class FiniteSum(abc.ABC):
    """The terms of a finite-sum game at one snapshot."""

    @abc.abstractmethod
    def sample(self) -> Any:
        """A randomly drawn term (a minibatch of terms) of this sum, for ``game.grad``."""

    @abc.abstractmethod
    def mean_grad(self, names: Sequence[str]) -> Grads:
        """The exact mean, over all terms, of the players' gradients at the current parameters."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 -- optional hook, a no-op for stateless sums
        """Inverse of :meth:`state_dict`."""


class FiniteSumGame(abc.ABC):
    """A game whose loss is a finite sum (SVRE's requirement); subclasses also implement :class:`Game`."""

    @property
    @abc.abstractmethod
    def finite_sum_size(self) -> int:
        """Terms of the finite sum in the unit of ``grad_evals``: the minibatch evaluations of one full gradient."""

    @abc.abstractmethod
    def finite_sum(self, noise_set: int = 0) -> FiniteSum:
        """The finite sum for a new snapshot. A game that draws part of its sum (the GAN's noise vectors) draws it
        now, ``noise_set`` of them (0 = the game's default)."""

    @abc.abstractmethod
    def restore_finite_sum(self, state: dict[str, Any]) -> FiniteSum:
        """The finite sum whose ``state_dict()`` is ``state`` (resume), drawing nothing."""
