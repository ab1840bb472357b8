"""Gradient penalties of the discriminators: WGAN-GP (Gulrajani et al. 2017), R1 (Mescheder et al. 2018) and
DRAGAN (Kodali et al. 2017), for K vectorised discriminators at once (``stabilizers.gradient_penalty.kind``,
``stabilizers.gradient_penalty.weight``).

The discriminators are one vectorised callable ``d(x) -> logits [K, B]`` evaluated on a batch
``x [B, ...]`` shared by the K discriminators. Every penalty returns one value per discriminator,
a tensor ``[K]``; the caller weights it (λ, γ/2, ...) and adds it to each discriminator's loss.
"""
from __future__ import annotations

from typing import Callable, Literal

import torch
from torch import Tensor

from gan_bench.models.ensemble import DiscriminatorEnsemble
from gan_bench.registry import choice
from gan_bench.stabilizers.base import STABILIZERS, DTermContext, Stabilizer

PenaltyKind = Literal["wgan_gp", "r1", "dragan"]
_PENALTY_KINDS: tuple[str, ...] = ("wgan_gp", "r1", "dragan")
Penalty = choice("Penalty", ("none", *_PENALTY_KINDS))  # the values of stabilizers.gradient_penalty.kind
Discriminators = Callable[[Tensor], Tensor]  # x [B, ...] -> logits [K, B]


def input_gradients(d: Discriminators, x: Tensor) -> Tensor:
    """Per-discriminator gradients of the logits w.r.t. the inputs, ``[K, B, *x.shape[1:]]``.

    Row k is ∇_x Σ_i D_k(x_i): since D_k(x_i) depends on x_i only (no batch statistics in D), its
    slice i is ∇_{x_i} D_k(x_i). A :class:`~gan_bench.ensemble.DiscriminatorEnsemble` gets one copy of x
    per discriminator (``per_member=True``, an expand: no copy) and ONE backward pass of Σ logits gives
    all K rows (measured on CPU, DCGAN 32 px, batch 64, WGAN-GP value and parameter gradients: 3.2x faster
    at K = 4, 11.5x at K = 8). K = 1 and any other callable get K vector-Jacobian products batched with
    ``is_grads_batched`` (grad_outputs = the rows of eye(K)), which costs K backward passes through all K
    discriminators. The graph is kept (``create_graph=True``) so a penalty built on it is differentiable
    w.r.t. D's parameters. ``x`` is detached first: penalties regularise D only.
    """
    if isinstance(d, DiscriminatorEnsemble) and d.count > 1:
        xk = d.member_views(x.detach()).requires_grad_(True)
        logits = d(xk, per_member=True)
        (grads,) = torch.autograd.grad(logits.sum(), xk, create_graph=True)
        return grads
    x = x.detach().requires_grad_(True)
    logits = d(x)
    if logits.dim() != 2 or logits.shape[1] != x.shape[0]:
        raise ValueError(
            f"the discriminator must return logits of shape [K, B] = [K, {x.shape[0]}], got {tuple(logits.shape)}"
        )
    k = logits.shape[0]
    eye = torch.eye(k, dtype=logits.dtype, device=logits.device)
    (grads,) = torch.autograd.grad(
        logits.sum(dim=1), x, grad_outputs=eye, is_grads_batched=True, create_graph=True
    )
    return grads


def dragan_perturb(x: Tensor, c: float = 0.5) -> Tensor:
    """DRAGAN's perturbed points x̃ = x + α·δ, δ = c·std(x)·U[0,1]^{shape of x}, α ~ U[0,1] per sample.

    As in the reference code of Kodali et al. (2017): std(x) is the standard deviation of the whole
    minibatch (a scalar), δ is elementwise uniform noise scaled by it, and the gradient norm is
    taken at a random point (α per sample) of the segment from x to x + δ.
    """
    if c <= 0:
        raise ValueError(f"dragan_c must be positive, got {c}")
    delta = c * x.std() * torch.rand_like(x)
    alpha = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
    return x + alpha * delta


def gradient_penalty(
    d: Discriminators,
    real: Tensor,
    fake: Tensor | None = None,
    kind: PenaltyKind = "wgan_gp",
    *,
    center: float = 1.0,
    dragan_c: float = 0.5,
) -> Tensor:
    """Gradient penalty of each of the K discriminators, a tensor ``[K]`` (differentiable w.r.t. D).

    * ``"wgan_gp"`` (Gulrajani et al. 2017): E[(‖∇_x D(x̂)‖₂ − center)²] on x̂ = ε·x + (1−ε)·G(z),
      ε ~ U[0,1] per sample; ``fake`` is required and must have ``real``'s shape.
    * ``"r1"`` (Mescheder et al. 2018): E[‖∇_x D(x)‖₂²] on the real batch — the plain expectation:
      the caller multiplies by γ/2. ``fake`` is ignored.
    * ``"dragan"`` (Kodali et al. 2017): E[(‖∇_x D(x̃)‖₂ − center)²] on the perturbed real points
      of :func:`dragan_perturb` with ``c = dragan_c``. ``fake`` is ignored.

    ``real`` and ``fake`` are detached: the penalty carries no gradient to the generator.
    """
    if kind not in _PENALTY_KINDS:
        raise ValueError(f"unknown gradient penalty kind {kind!r}; expected one of {_PENALTY_KINDS}")
    if real.dim() < 2 or real.shape[0] == 0:
        raise ValueError(f"real must be a non-empty batch [B, ...], got shape {tuple(real.shape)}")
    if kind == "wgan_gp":
        if fake is None:
            raise ValueError("the WGAN-GP penalty needs the fake batch (interpolates between real and fake)")
        if fake.shape != real.shape:
            raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
        eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), dtype=real.dtype, device=real.device)
        points = eps * real.detach() + (1 - eps) * fake.detach()
    elif kind == "dragan":
        points = dragan_perturb(real.detach(), dragan_c)
    else:
        points = real
    grads = input_gradients(d, points).flatten(start_dim=2)  # [K, B, n]
    if kind == "r1":
        return grads.pow(2).sum(dim=2).mean(dim=1)
    return (grads.norm(dim=2) - center).pow(2).mean(dim=1)


@STABILIZERS.register("gradient_penalty")
class GradientPenalty(Stabilizer):
    """A D term: ``weight`` x the gradient penalty of each discriminator (``weight / 2`` for R1, its gamma / 2),
    ``[K]``, on the batch the discriminators saw (real; WGAN-GP also the fakes, detached); kind = none: off."""

    per_sample = True  # each D output must depend on its own sample only (no batch norm, no minibatch features)

    def __init__(self, kind: Penalty = Penalty.none, weight: float = 10.0):
        if weight < 0:
            raise ValueError(f"weight={weight} is impossible: it must be >= 0")
        self.kind, self.weight = str(kind), weight
        if self.kind not in ("none", *_PENALTY_KINDS):
            raise ValueError(f"kind={self.kind} is not supported: use one of none, {', '.join(_PENALTY_KINDS)}")
        self.active = self.kind != "none"

    def d_term(self, ctx: DTermContext) -> Tensor:
        penalty = gradient_penalty(ctx.discriminators, ctx.real, ctx.fake, self.kind)
        ctx.log("d/penalty", penalty)
        return (self.weight / 2 if self.kind == "r1" else self.weight) * penalty
