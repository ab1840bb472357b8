"""The game protocol: a two-player differentiable game seen as a vector field.

Every game optimizer in :mod:`gan_bench.optim` is a rule on this field. A game exposes

* ``players``: ordered player names, e.g. ``("G", "D")``;
* ``params(name)``: the player's parameters (leaf tensors updated in place);
* ``sample()``: draws the randomness of one stochastic gradient evaluation (a minibatch: real
  indices and noise). It only uses the global torch RNG, so runs are reproducible and resumable;
* ``grad(names, sample)``: for each named player, the gradient of that player's own loss with
  respect to its own parameters, at the current parameter values, using ``sample``. It returns
  ``{name: [tensor, ...]}`` aligned with ``params(name)`` and never touches ``.grad``;
* for finite-sum games (SVRE): ``full_grad(names)``, the mean gradient over the whole finite sum
  at the current point, and ``finite_sum_size``.

The GAN of :mod:`gan_bench.game` and the toy games of :mod:`gan_bench.optim.toy_games` both
implement it, so every optimizer works with every loss, aggregation and number of discriminators.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch

Grads = dict[str, list[torch.Tensor]]


class Game(Protocol):
    players: tuple[str, ...]

    def params(self, name: str) -> list[torch.Tensor]: ...

    def sample(self) -> Any: ...

    def grad(self, names: Sequence[str], sample: Any) -> Grads: ...


class FiniteSumGame(Game, Protocol):
    finite_sum_size: int

    def full_grad(self, names: Sequence[str]) -> Grads: ...
