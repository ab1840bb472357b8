"""Game optimizers: GDA (alternating, simultaneous), extragradient / ExtraAdam, optimistic (past
extragradient), SVRE and Lookahead-minmax, composable on any :class:`~gan_bench.optim.protocol.Game`
and resumable bit-identically; plus generator parameter averaging.

Built from the config's ``optimizer`` node by :func:`build_game_optimizer`::

    rule: {_target_: an UpdateRule (optimizer/rule group), + its keys, e.g. SVRE's epoch_length}
    base: {_target_: torch.optim.Adam | torch.optim.SGD (optimizer/base group), + its keys (betas, momentum, ...)}
    g, d: per-player keys of the base optimizer on top of ``base`` (TTUR: lr; betas ...; None = base's value)
    lookahead: {k (0 = off), alpha, k2 (0 = off), alpha2}
    averaging: {ema, uniform, start}   (the generator averages, kept by the run)
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..build import instantiate
from ..registry import Registry
from .averaging import ParamAverage
from .extragradient import Extragradient
from .gda import RULES, AlternatingGDA, GameOptimizer, GameOptimizerConfigError, SimultaneousGDA, UpdateRule
from .lookahead import Lookahead, check_lookahead
from .optimistic import Optimistic
from .protocol import FiniteSum, FiniteSumGame, Game
from .svre import SVRE

#: the base optimizers (config group ``optimizer/base``): each player's torch optimizer, with the keys a config may set
BASES = Registry("optimizer/base", runtime=("params",))
BASES.add("adam", torch.optim.Adam, params=("lr", "betas", "eps", "weight_decay", "amsgrad"))
BASES.add("sgd", torch.optim.SGD, params=("lr", "momentum", "dampening", "weight_decay", "nesterov"))

__all__ = [
    "AlternatingGDA",
    "BASES",
    "Extragradient",
    "FiniteSum",
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
    "UpdateRule",
    "base_optimizer",
    "build_game_optimizer",
]


def _plain(node: Any) -> dict:
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})


def base_optimizer(base: Any, player: Any, params: list[torch.Tensor], where: str) -> torch.optim.Optimizer:
    """A player's torch optimizer: the ``base`` node's class and keys, with the ``player`` node's keys on top."""
    own = {k: v for k, v in _plain(player).items() if v is not None}
    merged = {**_plain(base), **own}
    lr = merged.get("lr")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        key = f"{where}.lr" if "lr" in own else "optimizer.base.lr"
        raise GameOptimizerConfigError(f"{key}={lr} is impossible: it must be > 0")
    return instantiate(merged, where, group=BASES, params=params)


def build_game_optimizer(cfg: Any, game: Game, n_dis: int = 1) -> GameOptimizer:
    """The game optimizer described by the ``optimizer`` node (see module doc) on ``game``; Lookahead-wrapped if
    ``lookahead.k > 0``. Impossible settings raise a ConfigError naming the key."""
    cfg = _plain(cfg)
    optimizers = {p: base_optimizer(cfg["base"], cfg.get(p.lower()), game.params(p), f"optimizer.{p.lower()}")
                  for p in game.players}
    rule = instantiate(cfg["rule"], "optimizer.rule", group=RULES, game=game, optimizers=optimizers, n_dis=int(n_dis))
    la = {"k": 0, "alpha": 0.5, "k2": 0, "alpha2": 0.5, **cfg.get("lookahead", {})}
    check_lookahead(la["k"], la["alpha"], la["k2"], la["alpha2"])
    return Lookahead(rule, la["k"], la["alpha"], la["k2"], la["alpha2"]) if la["k"] else rule
