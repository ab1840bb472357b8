"""Game optimizers: GDA (alternating, simultaneous), extragradient / ExtraAdam, optimistic (past
extragradient), SVRE and Lookahead-minmax, composable on any :class:`~gan_bench.optim.game.Game`
and resumable bit-identically; plus generator parameter averaging.

Build one from a config with :func:`build_game_optimizer`. ``cfg`` is an OmegaConf ``DictConfig``,
a mapping or an object with the attributes::

    name: "sgd" | "adam"                     base optimizer of each player
    update: "alternating" | "simultaneous" | "extragradient" | "optimistic" | "svre"   (the update rule)
    g, d: {lr, betas: [b1, b2], momentum, weight_decay}   per player (TTUR); betas are Adam's,
                                                          momentum is SGD's
    lookahead: {k (0 = off), alpha, k2 (0 = off), alpha2}  optional
    svre: {epoch_length, refresh: "random" | "epoch"}       needed for rule "svre"
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from .averaging import ParamAverage
from .extragradient import Extragradient
from .game import FiniteSumGame, Game
from .gda import AlternatingGDA, GameOptimizer, GameOptimizerConfigError, SimultaneousGDA, UpdateRule
from .lookahead import Lookahead, check_lookahead
from .optimistic import Optimistic
from .svre import SVRE

BASE_OPTIMIZERS = ("sgd", "adam")
RULES: dict[str, type[UpdateRule]] = {
    "alternating": AlternatingGDA,
    "simultaneous": SimultaneousGDA,
    "extragradient": Extragradient,
    "optimistic": Optimistic,
    "svre": SVRE,
}
_REQUIRED = object()

__all__ = [
    "AlternatingGDA",
    "BASE_OPTIMIZERS",
    "Extragradient",
    "FiniteSumGame",
    "Game",
    "GameOptimizer",
    "GameOptimizerConfigError",
    "Lookahead",
    "Optimistic",
    "ParamAverage",
    "RULES",
    "SVRE",
    "SimultaneousGDA",
    "build_base_optimizer",
    "build_game_optimizer",
]


def _field(cfg: Any, key: str, where: str, default: Any = _REQUIRED) -> Any:
    """``cfg.key`` for DictConfigs, mappings and plain objects; ``default`` (or a ValueError) if absent."""
    value = cfg.get(key, default) if isinstance(cfg, Mapping) else getattr(cfg, key, default)
    if value is _REQUIRED:
        raise GameOptimizerConfigError(f"{where}.{key} is missing from the optimizer config")
    return value


def _number(value: Any, where: str, low: float, strict: bool) -> float:
    """``float(value)`` if finite and ``> low`` (``strict``) or ``>= low``, else a ValueError."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise GameOptimizerConfigError(f"{where}={value!r} is not a number") from None
    if not math.isfinite(x) or x < low or (strict and x == low):
        raise GameOptimizerConfigError(f"{where}={value} is impossible: it must be {'>' if strict else '>='} {low:g}")
    return x


def build_base_optimizer(name: str, params: list[torch.Tensor], player_cfg: Any, where: str) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` or ``Adam`` over one player's parameters, from ``{lr, betas, momentum, weight_decay}``."""
    lr = _number(_field(player_cfg, "lr", where), f"{where}.lr", 0.0, strict=True)
    weight_decay = _number(_field(player_cfg, "weight_decay", where, 0.0), f"{where}.weight_decay", 0.0, strict=False)
    if name == "sgd":
        momentum = _number(_field(player_cfg, "momentum", where, 0.0), f"{where}.momentum", 0.0, strict=False)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    betas = _field(player_cfg, "betas", where, (0.9, 0.999))
    betas = tuple(_number(b, f"{where}.betas", 0.0, strict=False) for b in betas)
    if len(betas) != 2 or not all(b < 1.0 for b in betas):
        raise GameOptimizerConfigError(f"{where}.betas={list(betas)} is impossible: two values in [0, 1) are needed")
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)


def build_game_optimizer(cfg: Any, game: Game, n_dis: int = 1) -> GameOptimizer:
    """The game optimizer described by ``cfg`` (see module doc) on ``game``; Lookahead-wrapped if ``lookahead.k > 0``.

    Raises :class:`GameOptimizerConfigError` (a ``ValueError``) naming the valid values on bad settings.
    """
    name = _field(cfg, "name", "optimizer")
    if name not in BASE_OPTIMIZERS:
        raise GameOptimizerConfigError(
            f"optimizer.name={name!r} is not valid; choose one of: {', '.join(BASE_OPTIMIZERS)}"
        )
    rule = _field(cfg, "update", "optimizer")
    if rule not in RULES:
        raise GameOptimizerConfigError(f"optimizer.update={rule!r} is not valid; choose one of: {', '.join(RULES)}")
    if int(n_dis) != n_dis or n_dis < 1:
        raise GameOptimizerConfigError(f"n_dis={n_dis} is impossible: it must be an integer >= 1")

    la = _field(cfg, "lookahead", "optimizer", None)
    k, alpha, k2, alpha2 = (0, 0.5, 0, 0.5) if la is None else (
        _field(la, "k", "optimizer.lookahead", 0),
        _field(la, "alpha", "optimizer.lookahead", 0.5),
        _field(la, "k2", "optimizer.lookahead", 0),
        _field(la, "alpha2", "optimizer.lookahead", 0.5),
    )
    check_lookahead(k, alpha, k2, alpha2)

    optimizers = {
        player: build_base_optimizer(
            name, game.params(player), _field(cfg, player.lower(), "optimizer"), f"optimizer.{player.lower()}"
        )
        for player in game.players
    }
    if rule == "svre":
        svre = _field(cfg, "svre", "optimizer", None)
        kwargs = {} if svre is None else {
            "epoch_length": _field(svre, "epoch_length", "optimizer.svre", 100),
            "refresh": _field(svre, "refresh", "optimizer.svre", "random"),
        }
        inner: GameOptimizer = SVRE(game, optimizers, int(n_dis), **kwargs)
    else:
        inner = RULES[rule](game, optimizers, int(n_dis))
    return Lookahead(inner, k, alpha, k2, alpha2) if k else inner
