"""What every aggregation is: the generator's K per-discriminator losses in, the generator's gradient out.

An aggregation that combines LOSSES (AVG, GMAN, HV) implements :meth:`Aggregation.loss` (``[K]`` → a scalar to
differentiate); one that combines GRADIENTS (MGD) overrides :meth:`Aggregation.generator_grads` and declares
``per_member_inputs = True`` so that the game's forward gives each discriminator its own view of the generated batch
(one backward pass then yields every d l_k / d x apart). Your own aggregation: subclass one of these, register it or
point ``aggregation._target_`` at it; its constructor takes ``k`` (the number of discriminators) from gan-bench.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from gan_bench import distributed
from gan_bench.errors import ConfigError
from gan_bench.registry import Registry

Logs = dict[str, Tensor]
AGGREGATIONS = Registry("aggregation", runtime=("k",))
REDUCTIONS = ("mean", "sum")


class Aggregation(nn.Module):
    """Base class: combines the K generator losses ``l [K]`` into the generator's update."""

    per_member_inputs: bool = False  # True: needs d l_k / d x for each k apart (MGD)

    def __init__(self, k: int | None = None) -> None:
        super().__init__()
        if k is not None and k < 1:
            raise ConfigError(f"k={k} is impossible: it must be >= 1 (the number of discriminators)")
        self.k = k

    def _check_k(self, count: int, what: str) -> None:
        if count == 0:
            raise ValueError(f"{type(self).__name__} got {what} with K = 0 entries; need at least one discriminator.")
        if self.k is not None and count != self.k:
            raise ValueError(f"{type(self).__name__} was built for k={self.k} discriminators "
                             f"but got {what} with K = {count}.")

    def _check_losses(self, losses: Tensor) -> None:
        if losses.ndim != 1:
            raise ValueError(f"losses must be a 1-D tensor of shape [K], got shape {tuple(losses.shape)}.")
        self._check_k(losses.numel(), "losses")

    def loss(self, losses: Tensor) -> tuple[Tensor, Logs]:
        """``losses [K]`` -> (scalar generator loss to backpropagate, detached logs)."""
        raise NotImplementedError(f"{type(self).__name__} combines gradients, not losses")

    def generator_grads(self, losses: Tensor, params: Sequence[Tensor], penalty: Tensor | None,
                        route: "GeneratorRoute") -> tuple[list[Tensor], Logs]:
        """The gradient of the aggregated loss (plus ``penalty``, a scalar on the generator's parameters) with respect
        to ``params`` (the generator's, then the aggregation's own)."""
        if distributed.active():
            return self._global_grads(losses, params, penalty, route)
        loss, logs = self.loss(losses)
        if penalty is not None:
            loss = loss + penalty
        return list(torch.autograd.grad(loss, list(params))), logs

    def _global_grads(self, losses: Tensor, params: Sequence[Tensor], penalty: Tensor | None,
                      route: "GeneratorRoute") -> tuple[list[Tensor], Logs]:
        """Data-parallel: the weights the aggregation puts on each l_k come from the GLOBAL losses (the ranks' average).
        With ``c = dL/dl`` there, this rank differentiates ``sum_k c_k l_k`` (+ penalty); once the game has averaged
        the ranks' gradients, that is the one-process gradient of the aggregated loss."""
        g_params = route.generator_params
        leaf = distributed.mean(losses).requires_grad_(True)
        loss, logs = self.loss(leaf)
        own = list(params)[len(g_params):]  # the aggregation's own parameters (GMAN*'s lambda)
        coef, *own_grads = torch.autograd.grad(loss, [leaf, *own], allow_unused=True)
        surrogate = (coef.detach() * losses).sum() + (penalty if penalty is not None else 0.0)
        grads = list(torch.autograd.grad(surrogate, g_params))
        return grads + [g if g is not None else torch.zeros_like(p) for g, p in zip(own_grads, own)], logs


class GeneratorRoute:
    """How the generator's losses depend on its parameters, for aggregations that need per-loss gradients:
    ``images`` = G(z) (carrying G's graph), ``views`` = the per-discriminator views of them that the losses were
    computed from (``[K, B, ...]``, or None when the discriminators saw one shared batch, e.g. unrolled ones).
    ``batched``: the K per-loss backward passes as one vmapped pass (``is_grads_batched``), or one after another
    (False; what the ensemble's loop layout chooses on the CPU, where vmapped convolution backwards are slower)."""

    def __init__(self, images: Tensor, views: Tensor | None, generator_params: Sequence[Tensor], batched: bool = True):
        self.images, self.views, self.generator_params = images, views, list(generator_params)
        self.batched = batched


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"reduction={reduction!r} is not valid; choose one of: {', '.join(REDUCTIONS)}")
    return reduction
