"""Unrolled GAN (Metz et al. 2017, "Unrolled Generative Adversarial Networks").

The generator minimises the surrogate f_K(θ_G, θ_D) = f(θ_G, θ_D^K(θ_G, θ_D)), where θ_D^K is the
discriminators' parameters after K differentiable optimisation steps on their loss:

    θ_D^0 = θ_D,   θ_D^{k+1} = θ_D^k − η·∂L_D(θ_G, θ_D^k)/∂θ_D^k          (SGD form)

or the same steps with Adam's update rule (Adam form). :func:`unrolled_params` returns θ_D^K; the
caller evaluates the generator loss with them, while the discriminators themselves are updated
normally (the unrolled copies are never written back).
"""
from __future__ import annotations

from typing import Callable, Literal, Mapping

import torch
from torch import Tensor

from gan_bench.registry import choice
from gan_bench.stabilizers.base import STABILIZERS, DOut, GPhaseContext, SetupContext, Stabilizer

UnrollMethod = Literal["sgd", "adam"]
Method = choice("UnrollMethod", ("sgd", "adam"))  # the values of stabilizers.unrolled.method


def unrolled_params(
    d_loss_fn: Callable[[dict[str, Tensor]], Tensor],
    params: Mapping[str, Tensor],
    steps: int,
    lr: float,
    create_graph: bool = True,
    *,
    method: UnrollMethod = "sgd",
    betas: tuple[float, float] = (0.5, 0.999),
    eps: float = 1e-8,
    adam_state: Mapping[str, Mapping[str, Tensor]] | None = None,
) -> dict[str, Tensor]:
    """θ_D^K after ``steps`` differentiable steps of ``method`` with step size ``lr`` on ``d_loss_fn``.

    ``d_loss_fn(params)`` is the discriminators' (summed) loss as a function of their stacked
    parameters; it closes over the real batch and over G's fake batch, which must carry G's graph
    (not detached). With ``create_graph=True`` the returned parameters are differentiable w.r.t.
    G's parameters through every unrolled update (the second-order term of Metz et al.); with
    ``False`` they are constants and the generator gets the first-order gradient ∂f/∂θ_G at θ_D^K.

    The unroll starts from detached copies of ``params``: no gradient flows back into the
    discriminators' parameter tensors. ``steps = 0`` returns ``params`` themselves (→ the plain loss).

    Adam form: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − η·m̂/(√v̂ + eps) with bias-corrected
    m̂, v̂. The moments start from ``adam_state[name]`` when given (torch.optim.Adam's per-parameter
    state: ``exp_avg``, ``exp_avg_sq``, ``step``, e.g. ``{n: opt.state[p] for n, p in ...}``), else
    from zero (step 0).
    """
    if steps < 0:
        raise ValueError(f"unroll steps must be >= 0, got {steps}")
    if lr <= 0:
        raise ValueError(f"unroll learning rate must be positive, got {lr}")
    if method not in ("sgd", "adam"):
        raise ValueError(f"unknown unroll method {method!r}; expected 'sgd' or 'adam'")
    if not params:
        raise ValueError("params is empty: nothing to unroll")
    if steps == 0:
        return dict(params)

    names = list(params)
    current = {n: params[n].detach().requires_grad_(True) for n in names}
    if method == "adam":
        state = adam_state or {}
        moments = {n: _initial_moments(current[n], state.get(n)) for n in names}
    for _ in range(steps):
        loss = d_loss_fn(current)
        if loss.dim() != 0:
            raise ValueError(f"d_loss_fn must return a scalar loss, got shape {tuple(loss.shape)}")
        grads = torch.autograd.grad(
            loss, [current[n] for n in names], create_graph=create_graph, materialize_grads=True
        )
        updated = {}
        for n, g in zip(names, grads):
            if method == "sgd":
                updated[n] = current[n] - lr * g
            else:
                m, v, t = moments[n]
                m, v, t = betas[0] * m + (1 - betas[0]) * g, betas[1] * v + (1 - betas[1]) * g * g, t + 1
                moments[n] = (m, v, t)
                m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
                updated[n] = current[n] - lr * m_hat / (_safe_sqrt(v_hat) + eps)
        current = updated if create_graph else {n: p.detach().requires_grad_(True) for n, p in updated.items()}
    return current


def _initial_moments(p: Tensor, state: Mapping[str, Tensor] | None) -> tuple[Tensor, Tensor, int]:
    """(m, v, step) from torch.optim.Adam's state for ``p``, or zeros at step 0."""
    if not state:
        return torch.zeros_like(p), torch.zeros_like(p), 0
    m, v = state["exp_avg"].detach(), state["exp_avg_sq"].detach()
    if m.shape != p.shape or v.shape != p.shape:
        raise ValueError(f"Adam state of shape {tuple(m.shape)} does not match parameter {tuple(p.shape)}")
    return m, v, int(state["step"])


def _safe_sqrt(v: Tensor) -> Tensor:
    """√v with a finite derivative where v = 0 (exactly-zero gradients, e.g. dead units), where
    plain sqrt would give 0·∞ = NaN in the second-order term."""
    positive = v > 0
    return torch.where(positive, torch.where(positive, v, torch.ones_like(v)).sqrt(), torch.zeros_like(v))


@STABILIZERS.register("unrolled")
class Unrolled(Stabilizer):
    """The G-phase discriminator: the discriminators' output on the fakes after ``steps`` differentiable steps of D on
    the current batch (steps = 0: off); ``lr`` = 0 unrolls with D's learning rate. The Adam form starts from the
    moments of D's Adam optimizer, read at each use (so a resumed run unrolls from the restored state)."""

    def __init__(self, steps: int = 0, lr: float = 0.0, method: Method = Method.sgd):
        if steps < 0:
            raise ValueError(f"steps={steps} is impossible: it must be >= 0 (0 = off)")
        if lr < 0:
            raise ValueError(f"lr={lr} is impossible: it must be >= 0 (0 = the discriminators' learning rate)")
        self.steps, self.lr, self.method = int(steps), float(lr), str(method)
        if self.method not in ("sgd", "adam"):
            raise ValueError(f"method={self.method} is not supported: use one of sgd, adam")
        self.active = self.steps > 0
        self.betas: tuple[float, float] = (0.5, 0.999)
        self.optimizer: torch.optim.Optimizer | None = None

    def setup(self, ctx: SetupContext) -> None:
        self.lr = self.lr or ctx.d_lr
        self.betas = tuple(ctx.d_betas)
        self.optimizer = ctx.d_optimizer if isinstance(ctx.d_optimizer, torch.optim.Adam) else None

    def g_discriminator(self, ctx: GPhaseContext) -> DOut:
        D, real, fake = ctx.discriminators, ctx.real, ctx.fake

        def d_loss(p: dict[str, Tensor]) -> Tensor:
            return ctx.loss.d(D.functional(p, real), D.functional(p, fake)).sum()

        d_params = D.param_dict()
        state = self.optimizer.state if self.optimizer is not None else None
        adam_state = None
        if self.method == "adam" and state:
            adam_state = {n: state[p] for n, p in d_params.items() if p in state}
        params = unrolled_params(d_loss, d_params, self.steps, self.lr, method=self.method, betas=self.betas,
                                 adam_state=adam_state)
        return DOut.of(D.functional(params, fake, return_features=ctx.features))
