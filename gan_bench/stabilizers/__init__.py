"""Training stabilisers (config section ``stabilizers``), a registered group like the aggregations and the losses: one
class per technique, one file each, each with a node ``stabilizers.NAME`` naming its class with ``_target_``:

* ``instance_noise``: an input transform (every discriminator input): :class:`~.instance_noise.InstanceNoise`;
* ``gradient_penalty``: a D term, ``[K]`` added to the K discriminator losses:
  :class:`~.gradient_penalty.GradientPenalty`;
* ``unrolled``: the G phase's discriminator: :class:`~.unrolled.Unrolled`;
* ``feature_matching``: a G term, ``l_k -> l_k'`` before the aggregation: :class:`~.feature_matching.FeatureMatching`;
* ``historical_averaging``: a parameter penalty of both players: :class:`~.historical_averaging.HistoricalAveraging`.

The hooks and the narrow context each receives are in :mod:`~.base`; a stabiliser of your own is a class with one or
more of them, added as ``+stabilizers.NAME._target_=my_pkg.MyStabilizer`` (README: Plug in your own). Each of
gan-bench's own always has its node, off at its zero strength (``std``, ``weight``, ``steps``; ``kind=none`` for the
gradient penalty). Minibatch discrimination and virtual batch norm are layers (gan_bench/models/); one-sided label
smoothing is a loss parameter (gan_bench/losses.py).
"""
from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_bench.build import instantiate, plain
from gan_bench.errors import ConfigError
from gan_bench.stabilizers.base import (
    HOOKS,
    STABILIZERS,
    DOut,
    DTermContext,
    GPhaseContext,
    GTermContext,
    InputContext,
    Log,
    PenaltyContext,
    SetupContext,
    Stabilizer,
    hooks_of,
)
from gan_bench.stabilizers.feature_matching import FeatureMatching
from gan_bench.stabilizers.gradient_penalty import GradientPenalty
from gan_bench.stabilizers.historical_averaging import HistoricalAveraging
from gan_bench.stabilizers.instance_noise import InstanceNoise
from gan_bench.stabilizers.unrolled import Unrolled

#: the keys of the ``regularizer`` section of earlier versions -> the ``stabilizers`` keys that replaced them
REGULARIZER_KEYS = {
    "gp": "gradient_penalty.kind", "gp_weight": "gradient_penalty.weight", "instance_noise": "instance_noise.std",
    "instance_noise_anneal": "instance_noise.anneal_iters", "feature_matching": "feature_matching.weight",
    "feature_matching_only": "feature_matching.only", "historical_averaging": "historical_averaging.weight",
    "unroll.steps": "unrolled.steps", "unroll.lr": "unrolled.lr", "unroll.method": "unrolled.method",
}


class Stabilizers:
    """A run's active stabilisers by config name, applied hook by hook in config order (the game calls one method per
    phase); a hook's result is checked against what its phase needs."""

    def __init__(self, named: dict[str, Any] | None = None):
        self.named = dict(named or {})
        by_hook: dict[str, list[tuple[str, Any]]] = {h: [] for h in HOOKS}
        for name, s in self.named.items():
            hooks = hooks_of(s)
            if not hooks:
                raise ConfigError(f"stabilizers.{name} ({type(s).__name__}) defines none of the stabiliser hooks "
                                  f"{', '.join(HOOKS)} (gan_bench/stabilizers/base.py)")
            for h in hooks:
                by_hook[h].append((name, s))
        if len(by_hook["g_discriminator"]) > 1:
            names = " and ".join(f"stabilizers.{n}" for n, _ in by_hook["g_discriminator"])
            raise ConfigError(f"{names} both define g_discriminator (the G phase's discriminator); use one of them")
        self.transforms = [s for _, s in by_hook["transform"]]
        self._d_terms, self._g_terms, self._penalties = by_hook["d_term"], by_hook["g_term"], by_hook["penalty"]
        self.g_discriminator = by_hook["g_discriminator"][0][1] if by_hook["g_discriminator"] else None

    @property
    def needs_features(self) -> bool:
        return any(getattr(s, "needs_features", False) for s in self.named.values())

    @property
    def has_d_terms(self) -> bool:
        return bool(self._d_terms)

    @property
    def has_g_terms(self) -> bool:
        return bool(self._g_terms)

    # -- the phases ---------------------------------------------------------------------------------------------
    def d_terms(self, losses: Tensor, ctx: DTermContext) -> Tensor:
        """The K discriminator losses plus every D term."""
        total = losses
        for name, s in self._d_terms:
            total = total + _shaped(s.d_term(ctx), losses.shape, name, "d_term")
        return total

    def g_terms(self, losses: Tensor, ctx: GTermContext) -> Tensor:
        """The K generator losses through every G term."""
        for name, s in self._g_terms:
            losses = _shaped(s.g_term(losses, ctx), losses.shape, name, "g_term")
        return losses

    def penalty(self, player: str, log: Log) -> Tensor | None:
        """The sum of the parameter penalties on ``player`` (None: there are none)."""
        total = None
        for name, s in self._penalties:
            p = s.penalty(PenaltyContext(player, log))
            if p is None:
                continue
            _shaped(p, (), name, "penalty")
            total = p if total is None else total + p
        return total

    # -- the run around the step ------------------------------------------------------------------------------
    def setup(self, ctx: SetupContext) -> None:
        for s in self.named.values():
            if callable(getattr(s, "setup", None)):
                s.setup(ctx)

    def after_step(self) -> None:
        for s in self.named.values():
            if callable(getattr(s, "after_step", None)):
                s.after_step()

    def state_dict(self) -> dict:
        states = {n: s.state_dict() for n, s in self.named.items() if callable(getattr(s, "state_dict", None))}
        return {n: state for n, state in states.items() if state}

    def load_state_dict(self, state: dict) -> None:
        for name, s in self.named.items():
            if name in state:
                s.load_state_dict(state[name])


def _shaped(value: Any, shape: tuple, name: str, hook: str) -> Tensor:
    if not isinstance(value, Tensor) or tuple(value.shape) != tuple(shape):
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        want = "a scalar tensor" if not shape else f"a tensor of shape [K] = {tuple(shape)} (one per discriminator)"
        raise ConfigError(f"stabilizers.{name}: {hook} must return {want}, got {got}")
    return value


def build_stabilizers(node: Any) -> Stabilizers:
    """The active stabilisers of the ``stabilizers`` section, each built from its ``_target_`` node (a null node is
    left out); a stabiliser is set up for a run with :meth:`Stabilizers.setup`."""
    built = {}
    for name, spec in (plain(node) or {}).items():
        if spec is None:
            continue
        s = instantiate(spec, f"stabilizers.{name}", group=STABILIZERS)
        if getattr(s, "active", True):
            built[name] = s
    return Stabilizers(built)


__all__ = ["DOut", "DTermContext", "FeatureMatching", "GPhaseContext", "GTermContext", "GradientPenalty", "HOOKS",
           "HistoricalAveraging", "InputContext", "InstanceNoise", "PenaltyContext", "REGULARIZER_KEYS",
           "STABILIZERS", "SetupContext", "Stabilizer", "Stabilizers", "Unrolled", "build_stabilizers"]
