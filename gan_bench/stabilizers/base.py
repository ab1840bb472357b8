"""What a training stabiliser is: a registered class (config section ``stabilizers``, one node per stabiliser) whose
hooks the game's step calls, each with a narrow context of its phase (never the game itself).

The hooks, in the order of one gradient evaluation (:mod:`gan_bench.game`); a stabiliser defines the ones it acts in:

1. ``transform(x, ctx: InputContext) -> x``: the **input transform**, on every batch the discriminators see (real
   and fake, before the shared forward; instance noise);
2. ``d_term(ctx: DTermContext) -> [K]``: a **D term**, added to the K discriminator losses (gradient penalties);
3. ``g_discriminator(ctx: GPhaseContext) -> DOut``: the **G-phase discriminator**: the discriminators' output on the
   fakes that the generator's losses are computed from, in place of the shared forward's (unrolled GANs; at most one
   stabiliser may define it);
4. ``g_term(losses [K], ctx: GTermContext) -> [K]``: a **G term**, mapping the K generator losses l_k before the
   aggregation (feature matching);
5. ``penalty(ctx: PenaltyContext) -> scalar | None``: a **parameter penalty**, added to a player's loss (D's in the
   D phase, G's in the G phase; historical averaging); None: nothing for that player.

Besides the hooks: ``setup(ctx: SetupContext)`` once the run is built (the players' parameters, D's optimizer),
``after_step()`` after each optimizer step, ``state_dict()`` / ``load_state_dict(state)`` for the checkpoint (an
empty state is not stored), ``needs_features = True`` when a hook reads the discriminators' features, and ``active``:
False leaves a stabiliser out (gan-bench's own are off at their zero strength, so every one of them always has a node
in the config). The constructor's keyword parameters are the config keys (its schema), as for every registered group.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from torch import Tensor

from gan_bench.registry import Registry

if TYPE_CHECKING:
    import torch

STABILIZERS = Registry("stabilizers")
HOOKS = ("transform", "d_term", "g_discriminator", "g_term", "penalty")
Log = Callable[[str, Tensor], None]  # log(key, value): a detached statistic for the run's logs


@dataclass
class DOut:
    """The K discriminators' output on one batch: logits ``[K, B]`` and, when asked for, features ``[K, B, F]``."""

    logits: Tensor
    features: Tensor | None = None

    @classmethod
    def of(cls, out: Tensor | tuple[Tensor, Tensor]) -> "DOut":
        return cls(*out) if isinstance(out, tuple) else cls(out)


@dataclass
class SetupContext:
    """Once, when the run is built: what a stabiliser may keep (parameters are updated in place by the optimizer)."""

    params: dict[str, list[Tensor]]  # "G": G's (and the aggregation's) parameters, "D": the K discriminators'
    d_lr: float  # D's learning rate
    d_betas: tuple[float, float]  # D's Adam betas ((0.5, 0.999) for other optimizers)
    d_optimizer: "torch.optim.Optimizer | None" = None  # D's base optimizer (its state: e.g. Adam's moments)


@dataclass
class InputContext:
    iteration: int  # the training iteration (0-based)
    log: Log


@dataclass
class DTermContext:
    """The D phase: the batches as the discriminators saw them and their outputs."""

    discriminators: Any  # the K discriminators, x [B, ...] -> logits [K, B] (a DiscriminatorEnsemble)
    real: Tensor  # the real batch after the input transforms
    fake: Tensor  # the generated batch after the input transforms, detached
    real_out: DOut
    fake_out: DOut
    loss: Any  # the GAN loss: d(real, fake) -> [K], g(fake) -> [K]
    log: Log


@dataclass
class GPhaseContext:
    """The G phase before its losses: what the G-phase discriminator needs to evaluate the fakes."""

    discriminators: Any  # the K discriminators (a DiscriminatorEnsemble: functional(params, x), param_dict())
    loss: Any
    real: Tensor  # the real batch after the input transforms, detached
    fake: Tensor  # the generated batch after the input transforms, carrying G's graph
    features: bool  # the output must carry the discriminators' features (a stabiliser needs them)
    log: Log


@dataclass
class GTermContext:
    """The G phase: the discriminators' outputs the generator's losses were computed from."""

    real_out: DOut | None  # on the real batch (with features when a stabiliser needs them)
    fake_out: DOut  # on the fakes, carrying G's graph
    loss: Any
    log: Log


@dataclass
class PenaltyContext:
    player: str  # "G" or "D"
    log: Log


class Stabilizer:
    """Base class of a stabiliser: define the hooks of the phases it acts in (module doc); the rest is optional."""

    needs_features: bool = False  # a hook reads the discriminators' features (the shared forward returns them)
    active: bool = True  # False: built, but not applied (gan-bench's own at their zero strength)

    def setup(self, ctx: SetupContext) -> None:
        pass

    def after_step(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def hooks_of(stabilizer: Any) -> list[str]:
    """The hooks a stabiliser defines (its class need not derive from :class:`Stabilizer`)."""
    return [h for h in HOOKS if callable(getattr(stabilizer, h, None))]
