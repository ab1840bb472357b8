"""Small games with known equilibria, implementing the :class:`~gan_bench.optim.protocol.Game` protocol.

They are the ground truth for the game optimizers: on each of them the behaviour of GDA,
extragradient, optimistic GDA, SVRE and Lookahead-minmax is known from the literature.

* :class:`BilinearGame`: ``min_x max_y x^T A y`` (deterministic). With ``A`` invertible the only
  equilibrium is ``(0, 0)``; simultaneous GDA spirals out, alternating GDA cycles, extragradient,
  optimistic GDA and Lookahead converge (Gidel et al. 2019; Chavdarova et al. 2021).
* :class:`StochasticBilinearGame`: the finite sum of Chavdarova et al. (NeurIPS 2019, Sec. 5),
  ``(1/n) sum_i x^T A_i y + b_i^T x + c_i^T y``; ``sample()`` draws an index ``i``.
* :class:`RockPaperScissors`: mixed strategies ``p = softmax(a)``, ``q = softmax(b)``; G's loss is
  ``p^T M q``, D's is ``-p^T M q``; the equilibrium is uniform play.

Player ``"G"`` minimises, player ``"D"`` maximises; each holds one parameter vector in a tiny
``nn.Module`` (``game.modules[name]``) so parameter averaging can be applied to it. Computations
run in float64 so convergence can be checked to tight tolerances.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .protocol import FiniteSum, FiniteSumGame, Grads

PLAYERS = ("G", "D")


class _Vector(nn.Module):
    """One player's strategy: a single parameter vector ``w``."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(value.detach().clone().to(torch.float64))


class _ToyGame:
    """Shared plumbing: two players, one vector each, distance to a known equilibrium."""

    players: tuple[str, ...] = PLAYERS

    def __init__(self, x0: torch.Tensor, y0: torch.Tensor) -> None:
        self.modules = {"G": _Vector(x0), "D": _Vector(y0)}

    def params(self, name: str) -> list[torch.Tensor]:
        return [self.modules[name].w]

    @property
    def x(self) -> torch.Tensor:
        return self.modules["G"].w.detach()

    @property
    def y(self) -> torch.Tensor:
        return self.modules["D"].w.detach()

    def solution(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def distance(self) -> float:
        """Euclidean distance of the joint point ``(x, y)`` to the equilibrium."""
        xs, ys = self.solution()
        return float(torch.sqrt(((self.x - xs) ** 2).sum() + ((self.y - ys) ** 2).sum()))


class BilinearGame(_ToyGame):
    """``min_x max_y f(x, y) = x^T A y``; gradients ``A y`` for G and ``-A^T x`` for D."""

    def __init__(self, A: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor) -> None:
        A = torch.as_tensor(A, dtype=torch.float64)
        if A.ndim != 2 or A.shape != (len(x0), len(y0)):
            raise ValueError(f"A must have shape (len(x0), len(y0)) = ({len(x0)}, {len(y0)}), got {tuple(A.shape)}")
        super().__init__(x0, y0)
        self.A = A

    def sample(self) -> None:
        """Deterministic game: no randomness."""
        return None

    def grad(self, names: Sequence[str], sample: None = None) -> Grads:
        out: Grads = {}
        if "G" in names:
            out["G"] = [self.A @ self.y]
        if "D" in names:
            out["D"] = [-(self.A.T @ self.x)]
        return out

    def solution(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(0, 0)``, the unique equilibrium when ``A`` is invertible."""
        return torch.zeros_like(self.x), torch.zeros_like(self.y)


class StochasticBilinearGame(_ToyGame, FiniteSumGame):
    """Finite-sum bilinear game ``(1/n) sum_i x^T A_i y + b_i^T x + c_i^T y`` (Chavdarova et al. 2019).

    Term ``i`` gives G the gradient ``A_i y + b_i`` and D the gradient ``-(A_i^T x + c_i)``. With
    ``Abar, bbar, cbar`` the means, the equilibrium solves ``Abar y* = -bbar`` and ``Abar^T x* = -cbar``.
    """

    def __init__(self, A: torch.Tensor, b: torch.Tensor, c: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor) -> None:
        A, b, c = (torch.as_tensor(t, dtype=torch.float64) for t in (A, b, c))
        n, dx, dy = A.shape
        if b.shape != (n, dx) or c.shape != (n, dy) or (dx, dy) != (len(x0), len(y0)):
            raise ValueError(
                f"expected A (n, dx, dy), b (n, dx), c (n, dy) with dx=len(x0), dy=len(y0); got A {tuple(A.shape)}, "
                f"b {tuple(b.shape)}, c {tuple(c.shape)}, len(x0)={len(x0)}, len(y0)={len(y0)}"
            )
        super().__init__(x0, y0)
        self.A, self.b, self.c = A, b, c
        self.n = n

    @property
    def finite_sum_size(self) -> int:
        return self.n

    def finite_sum(self, noise_set: int = 0) -> "_Terms":
        return _Terms(self)

    def restore_finite_sum(self, state: dict) -> "_Terms":
        return _Terms(self)

    @classmethod
    def random(cls, n: int, d: int, a_noise: float, bc_noise: float, seed: int = 0) -> "StochasticBilinearGame":
        """``A_i = I + a_noise E_i``, ``b_i, c_i ~ N(0, bc_noise^2 I)``, start ``x0, y0 ~ N(0, I)``.

        Uses its own generator, so building a game never touches the global torch RNG.
        """
        gen = torch.Generator().manual_seed(seed)
        randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
        A = torch.eye(d, dtype=torch.float64) + a_noise * randn(n, d, d)
        return cls(A, bc_noise * randn(n, d), bc_noise * randn(n, d), randn(d), randn(d))

    def sample(self) -> torch.Tensor:
        """A uniformly drawn index of the finite sum (global torch RNG)."""
        return torch.randint(self.n, ())

    def grad(self, names: Sequence[str], sample: torch.Tensor) -> Grads:
        i = int(sample)
        out: Grads = {}
        if "G" in names:
            out["G"] = [self.A[i] @ self.y + self.b[i]]
        if "D" in names:
            out["D"] = [-(self.A[i].T @ self.x + self.c[i])]
        return out

    def mean_grad(self, names: Sequence[str]) -> Grads:
        """The exact mean of the ``n`` per-term gradients."""
        out: Grads = {}
        if "G" in names:
            out["G"] = [self.A.mean(0) @ self.y + self.b.mean(0)]
        if "D" in names:
            out["D"] = [-(self.A.mean(0).T @ self.x + self.c.mean(0))]
        return out

    def solution(self) -> tuple[torch.Tensor, torch.Tensor]:
        Abar = self.A.mean(0)
        xs = torch.linalg.solve(Abar.T, -self.c.mean(0))
        ys = torch.linalg.solve(Abar, -self.b.mean(0))
        return xs, ys


class _Terms(FiniteSum):
    """The fixed terms of a :class:`StochasticBilinearGame` (nothing is drawn at a snapshot)."""

    def __init__(self, game: StochasticBilinearGame) -> None:
        self.game = game

    def sample(self) -> torch.Tensor:
        return self.game.sample()

    def mean_grad(self, names: Sequence[str]) -> Grads:
        return self.game.mean_grad(names)


class RockPaperScissors(_ToyGame):
    """Rock-paper-scissors with softmax-parameterised mixed strategies.

    ``M[i, j]`` is G's loss when G plays ``i`` and D plays ``j`` (0 = rock, 1 = paper, 2 = scissors).
    With ``p = softmax(a)``, ``q = softmax(b)``: ``dL_G/da = (diag(p) - p p^T) M q`` and
    ``dL_D/db = -(diag(q) - q q^T) M^T p``. The equilibrium is ``p = q = (1/3, 1/3, 1/3)``.
    """

    M = torch.tensor([[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]], dtype=torch.float64)

    def __init__(self, a0: torch.Tensor, b0: torch.Tensor) -> None:
        if len(a0) != 3 or len(b0) != 3:
            raise ValueError(f"rock-paper-scissors needs 3 logits per player, got {len(a0)} and {len(b0)}")
        super().__init__(a0, b0)

    @property
    def p(self) -> torch.Tensor:
        return torch.softmax(self.x, 0)

    @property
    def q(self) -> torch.Tensor:
        return torch.softmax(self.y, 0)

    def sample(self) -> None:
        """Deterministic game: no randomness."""
        return None

    def grad(self, names: Sequence[str], sample: None = None) -> Grads:
        p, q = self.p, self.q
        out: Grads = {}
        if "G" in names:
            out["G"] = [(torch.diag(p) - torch.outer(p, p)) @ (self.M @ q)]
        if "D" in names:
            out["D"] = [-((torch.diag(q) - torch.outer(q, q)) @ (self.M.T @ p))]
        return out

    def solution(self) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.full((3,), 1.0 / 3.0, dtype=torch.float64)
        return u, u

    def distance(self) -> float:
        """Distance of the mixed strategies ``(p, q)`` to uniform play (logits are defined up to a shift)."""
        u, _ = self.solution()
        return float(torch.sqrt(((self.p - u) ** 2).sum() + ((self.q - u) ** 2).sum()))
