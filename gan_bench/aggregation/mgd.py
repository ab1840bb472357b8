"""Multiple gradient descent (Desideri 2012; Albuquerque, Monteiro et al., ICML 2019, Sec. 3.1): the generator steps
along the min-norm point of the convex hull of its K per-discriminator gradients, a common descent direction of every
loss. Everything MGD needs lives here: the per-loss gradient route through the generator, the float64 Gram matrix and
the three min-norm solvers (exact face enumeration, interior point with an exact polish, Frank-Wolfe).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_bench import distributed
from gan_bench.aggregation.base import AGGREGATIONS, Aggregation, GeneratorRoute, Logs
from gan_bench.errors import ConfigError
from gan_bench.registry import choice

SOLVERS = ("exact", "interior_point", "frank_wolfe")
Solver = choice("Solver", ("auto", *SOLVERS))
#: the exact min-norm solver enumerates the 2^K - 1 faces of the simplex; beyond this K use the interior-point one
MAX_EXACT_K = 12


@AGGREGATIONS.register("mgd")
class MultipleGradientDescent(Aggregation):
    """Multiple gradient descent. With ``G [K, P]`` the per-discriminator gradients,
    ``alpha = argmin_{alpha in simplex} ||alpha^T G||^2`` (the QP on the Gram matrix ``G G^T``, see
    :func:`min_norm_point`) and the direction is ``w* = alpha^T G``, a descent direction for every l_k
    (``g_k . w* >= ||w*||^2``). ``normalize=True`` returns ``w* / ||w*||`` (the paper's update
    ``x_{t+1} = x_t - lambda_t w*/||w*||``), and the zero vector when ``||w*|| <= eps`` (a Pareto-stationary point).
    ``solver``: ``auto`` = exact face enumeration up to MAX_EXACT_K discriminators, the interior-point solver beyond."""

    per_member_inputs = True

    def __init__(self, normalize: bool = False, solver: Solver = "auto", max_iter: int = 100,
                 eps: float = 1e-6, k: int | None = None) -> None:
        super().__init__(k)
        solver = resolve_solver(str(solver), k or 1)
        if solver not in SOLVERS:
            raise ConfigError(f"solver={solver!r} is not valid; choose one of: auto, {', '.join(SOLVERS)}")
        if solver == "exact" and k is not None and k > MAX_EXACT_K:
            raise ConfigError(f"solver=exact enumerates the simplex's faces and is limited to {MAX_EXACT_K} "
                              f"discriminators (got {k}); use solver=auto, interior_point or frank_wolfe")
        if max_iter < 1:
            raise ConfigError(f"max_iter={max_iter} is impossible: it must be >= 1")
        if not eps > 0:
            raise ConfigError(f"eps={eps} is impossible: it must be > 0")
        self.normalize, self.solver, self.max_iter, self.eps = normalize, solver, max_iter, eps

    def combine(self, grads: Tensor) -> tuple[Tensor, Logs]:
        """``grads [K, P]`` -> (update direction ``[P]``, detached logs)."""
        if grads.ndim != 2:
            raise ValueError("grads must be a 2-D tensor [K, P] (row k = flattened dl_k/dtheta), "
                             f"got shape {tuple(grads.shape)}.")
        self._check_k(grads.shape[0], "grads")
        grads = grads.detach()
        alpha = min_norm_point(gram64(grads), self.solver, self.max_iter).to(grads.dtype)
        direction = alpha @ grads
        norm = torch.linalg.vector_norm(direction)
        if self.normalize:
            direction = torch.where(norm > self.eps, direction / norm.clamp_min(self.eps), torch.zeros_like(direction))
        return direction, {"alpha": alpha, "norm": norm}

    def generator_grads(self, losses: Tensor, params: Sequence[Tensor], penalty: Tensor | None,
                        route: GeneratorRoute) -> tuple[list[Tensor], Logs]:
        """The K per-loss gradients of the generator, their min-norm point, plus the penalty's own gradient. With
        per-discriminator views, d l_k / d x comes from ONE backward through the Ds (which frees their graph) and the
        K cotangents are pulled back through G in one batched pass; otherwise (unrolled Ds) K batched backwards run
        through the whole graph."""
        g_params = route.generator_params
        if route.views is not None:
            (cotangents,) = torch.autograd.grad(losses.sum(), route.views)
            rows = batched_vjp_rows(route.images, cotangents, g_params, batched=route.batched)  # [K, P]
        else:
            rows = per_loss_grads(losses, g_params, batched=route.batched)
        distributed.mean_([rows])  # data-parallel: the min-norm point of the GLOBAL per-D gradients
        direction, logs = self.combine(rows)
        grads = [g.view_as(p) for g, p in zip(torch.split(direction, [p.numel() for p in g_params]), g_params)]
        if penalty is not None:
            grads = [g + e for g, e in zip(grads, torch.autograd.grad(penalty, g_params))]
        return grads + [torch.zeros_like(p) for p in list(params)[len(g_params):]], logs


def per_loss_grads(losses: Tensor, params: list[Tensor], retain_graph: bool = False, batched: bool = True) -> Tensor:
    """``[K]`` losses -> ``[K, P]`` gradients, row k = ``d l_k / d params`` flattened and concatenated in
    the order of ``params``. One batched backward pass (``grad_outputs = I_K``, ``is_grads_batched``), or with
    ``batched=False`` K passes. Parameters that no loss depends on get zero columns. ``retain_graph=True`` keeps the
    graph alive."""
    if losses.ndim != 1 or losses.numel() == 0:
        raise ValueError(f"losses must be a non-empty 1-D tensor of shape [K], got shape {tuple(losses.shape)}.")
    eye = torch.eye(losses.numel(), dtype=losses.dtype, device=losses.device)
    return batched_vjp_rows(losses, eye, params, retain_graph=retain_graph, batched=batched)


def batched_vjp_rows(output: Tensor, cotangents: Tensor, params: list[Tensor], retain_graph: bool = False,
                     batched: bool = True) -> Tensor:
    """``[K, P]``: row k = ``cotangents[k]`` pulled back from ``output`` to ``params`` (flattened, concatenated),
    the K vector-Jacobian products in one batched backward pass (``batched=False``: K backward passes, each keeping
    the graph for the next; on the CPU they beat the vmapped pass, whose convolution backwards run grouped). With
    ``output`` = the generator's images and ``cotangents[k]`` = d l_k / d images, the rows are the K generators'
    gradients of MGD."""
    if len(params) == 0:
        raise ValueError("params is empty: pass the generator's parameters.")
    if cotangents.shape[1:] != output.shape:
        raise ValueError(f"cotangents must have shape [K, *{tuple(output.shape)}], got {tuple(cotangents.shape)}.")
    k = cotangents.shape[0]
    if batched:
        grads = torch.autograd.grad(output, params, grad_outputs=cotangents, is_grads_batched=True,
                                    retain_graph=retain_graph, allow_unused=True)
    else:
        each = [torch.autograd.grad(output, params, grad_outputs=c, retain_graph=retain_graph or i < k - 1,
                                    allow_unused=True) for i, c in enumerate(cotangents.unbind(0))]
        grads = [None if g[0] is None else torch.stack(g) for g in zip(*each)]
    rows = [g.reshape(k, -1) if g is not None else p.new_zeros(k, p.numel()) for g, p in zip(grads, params)]
    return torch.cat(rows, dim=1)


def gram64(rows: Tensor, chunk: int = 1 << 18) -> Tensor:
    """``rows @ rows.T`` accumulated in float64 over column chunks (no float64 copy of all of ``rows``): in float32
    (or TF32) the Gram of strongly correlated gradients loses its positive semi-definiteness to cancellation."""
    gram = rows.new_zeros(rows.shape[0], rows.shape[0], dtype=torch.float64)
    for part in rows.split(chunk, dim=1):
        part = part.to(torch.float64)
        gram += part @ part.T
    return gram


def resolve_solver(requested: str, k: int) -> str:
    """The min-norm solver for K discriminators: ``auto`` is the face enumeration up to ``MAX_EXACT_K``, the
    interior-point solver beyond (both exact); any other name is returned as it is."""
    if requested == "auto":
        return "exact" if k <= MAX_EXACT_K else "interior_point"
    return requested


def min_norm_point(gram: Tensor, solver: str = "exact", max_iter: int = 100) -> Tensor:
    """``alpha`` on the simplex (``alpha >= 0``, ``sum alpha = 1``) minimising ``alpha^T gram alpha``, i.e.
    the min-norm point ``alpha^T G`` of the convex hull of the rows of ``G`` when ``gram = G G^T``.

    ``solver="exact"``: exact active-set enumeration (:func:`_min_norm_point_faces`), K <= MAX_EXACT_K.
    ``solver="interior_point"``: any K, a fixed number of primal-dual interior-point steps, then the optimum of the
    support they identify, verified by its KKT conditions (:func:`_min_norm_point_interior_point`).
    ``solver="frank_wolfe"``: Frank-Wolfe with exact line search (:func:`_min_norm_point_frank_wolfe`),
    ``max_iter`` steps. Runs in float64 on ``gram``'s device without host synchronisation; returns
    ``gram``'s dtype. Both solvers return non-negative weights summing to one."""
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or gram.shape[0] == 0:
        raise ValueError(f"gram must be a non-empty square [K, K] matrix, got shape {tuple(gram.shape)}.")
    if solver not in SOLVERS:
        raise ValueError(f"Unknown min-norm solver {solver!r}; valid options: {', '.join(SOLVERS)}.")
    k = gram.shape[0]
    q = gram.detach().to(torch.float64)
    q = 0.5 * (q + q.T)
    q = q / q.diagonal().amax().clamp_min(torch.finfo(torch.float64).tiny)  # same argmin, scale-free
    if solver == "exact":
        if k > MAX_EXACT_K:
            raise ValueError(f"solver='exact' enumerates 2^K faces and supports K <= {MAX_EXACT_K}, got K = {k}; "
                             f"use solver='interior_point' (or 'frank_wolfe').")
        alpha = _min_norm_point_faces(q)
    elif solver == "interior_point":
        alpha = _min_norm_point_interior_point(q)
    else:
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}.")
        alpha = _min_norm_point_frank_wolfe(q, max_iter)
    return alpha.to(gram.dtype)


def _support_kkt(q: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """For each support mask [n, K]: the solution of ``min a^T Q a`` s.t. ``sum a = 1``, ``a = 0`` off the support,
    from its KKT system ``[[Q_SS, -1], [1^T, 0]] [a_S; nu] = [0; 1]`` (one batched solve); returns
    (a [n, K], ok [n])."""
    n, k = masks.shape
    kkt = q.new_zeros(n, k + 1, k + 1)
    kkt[:, :k, :k] = q * masks[:, :, None] * masks[:, None, :] + torch.diag_embed(1.0 - masks)
    kkt[:, :k, k] = -masks
    kkt[:, k, :k] = masks
    rhs = q.new_zeros(n, k + 1)
    rhs[:, k] = 1.0
    solution, info = torch.linalg.solve_ex(kkt, rhs)
    return solution[:, :k], info == 0


IPM_STEPS = 16  # the polish is exact from 10 steps on all test cases (K = 2...40); 16 leaves a margin


def _min_norm_point_interior_point(q: Tensor, steps: int = IPM_STEPS) -> Tensor:
    """Mehrotra predictor-corrector interior point for ``min a^T Q a`` on the simplex, then an active-set polish.

    KKT: ``Q a - nu 1 - s = 0``, ``1^T a = 1``, ``a_i s_i = 0``, ``a, s >= 0``. Each of the ``steps`` Newton steps
    solves the (K+1)-system ``[[Q + diag(s/a), -1], [1^T, 0]]`` (s eliminated) twice with one LU factorisation; a
    fixed step count and tensor-valued step lengths keep it on the device without host synchronisation. Polish: the
    support ``{i: a_i > s_i}`` (strict complementarity splits the indices) is solved exactly from its KKT system; that
    point is taken when it is primal feasible and dual feasible (``(Q a)_j >= a^T Q a`` off the support, to rounding),
    i.e. when it is the optimum; otherwise the interior-point iterate (accurate to its duality gap) is returned."""
    k = q.shape[0]
    ones = q.new_ones(k)
    tiny = torch.finfo(q.dtype).tiny
    # the constant part of the Newton matrix; 1e-12 ridge: duplicate gradients make Q + diag(s/a) singular
    base = q.new_zeros(k + 1, k + 1)
    base[:k, :k] = q + 1e-12 * torch.eye(k, dtype=q.dtype, device=q.device)
    base[:k, k] = -1.0
    base[k, :k] = 1.0

    def direction(lu, piv, a, s, rd, rp, rc):  # -> (d[a; s], d nu)
        rhs = torch.cat([-rd - rc / a, (-rp).view(1)])
        sol = torch.linalg.lu_solve(lu, piv, rhs[:, None])[:, 0]
        da = sol[:k]
        return torch.cat([da, (-rc - s * da) / a]), sol[k]

    def max_step(v, dv):  # the largest step in (0, 1] keeping v = [a; s] >= 0
        return torch.where(dv < 0, -v / dv, math.inf).amin().clamp(max=1.0)

    v = torch.cat([ones / k, ones])  # [a; s], kept packed: one step length and one update for both
    nu = q.new_zeros(())
    for _ in range(steps):
        a, s = v[:k], v[k:]
        rd = q @ a - nu - s
        rp = a.sum() - 1.0
        mu = (a @ s) / k
        lu, piv, _ = torch.linalg.lu_factor_ex(base + torch.diag(F.pad(s / a, (0, 1))))  # no host synchronisation
        dv, dnu = direction(lu, piv, a, s, rd, rp, a * s)  # predictor (affine scaling)
        step = max_step(v, dv)
        da, ds = dv[:k], dv[k:]
        mu_aff = ((a + step * da) @ (s + step * ds)) / k
        sigma = (mu_aff / mu.clamp_min(tiny)).clamp(0.0, 1.0) ** 3
        dv, dnu = direction(lu, piv, a, s, rd, rp, a * s + da * ds - sigma * mu)  # corrector
        step = 0.99 * max_step(v, dv)
        new_v, new_nu = (v + step * dv).clamp_min(tiny), nu + step * dnu
        finite = torch.isfinite(new_v).all() & torch.isfinite(new_nu)
        v, nu = torch.where(finite, new_v, v), torch.where(finite, new_nu, nu)
    a, s = v[:k], v[k:]
    interior = a / a.sum()
    support = (a > s).to(q.dtype)
    polished, ok = _support_kkt(q, support[None])
    polished, ok = polished[0], ok[0] & torch.isfinite(polished[0]).all()
    value = polished @ q @ polished
    tol = 1e-12  # q is scaled to a largest diagonal entry of 1: rounding of Q a, well inside any meaningful gap
    optimal = (ok & (polished >= -tol).all() & ((q @ polished) >= value - tol).all()
               & (value <= interior @ q @ interior + tol))
    polished = torch.nan_to_num(polished, nan=0.0).clamp_min(0.0)
    polished = polished / polished.sum().clamp_min(tiny)
    return torch.where(optimal, polished, interior)


def _min_norm_point_faces(q: Tensor) -> Tensor:
    """Exact QP on the simplex by enumerating its faces. For every non-empty support S, solve the KKT
    system of ``min a^T Q a`` s.t. ``sum a = 1``, ``a_j = 0`` off S:
    ``[[Q_SS, -1], [1^T, 0]] [a_S; nu] = [0; 1]`` (one batched solve). Each solution, clipped at 0 and
    renormalised, is a point of the simplex; the answer is the one of least objective. Exact because an
    optimum with minimal support S* is the unique solution of the (then non-singular) KKT system of S*,
    already non-negative, and no point of the simplex has a smaller objective."""
    k = q.shape[0]
    bits = torch.arange(k, device=q.device)
    masks = ((torch.arange(1, 2 ** k, device=q.device)[:, None] >> bits) & 1).to(q.dtype)  # [2^K - 1, K]
    alpha, solved = _support_kkt(q, masks)
    alpha = torch.nan_to_num(alpha, nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0.0)
    total = alpha.sum(dim=1, keepdim=True)
    feasible = solved & (total.squeeze(1) > 0)
    alpha = alpha / total.clamp_min(torch.finfo(q.dtype).tiny)
    objective = torch.einsum("ni,ij,nj->n", alpha, q, alpha)
    best = torch.where(feasible, objective, torch.full_like(objective, math.inf)).argmin()
    return alpha.index_select(0, best.view(1)).squeeze(0)


def _segment_min_norm(aa: Tensor, ab: Tensor, bb: Tensor) -> Tensor:
    """Weight ``gamma in [0, 1]`` on ``b`` minimising ``||(1 - gamma) a + gamma b||^2`` given the inner
    products: ``gamma = clip((a.a - a.b) / ||a - b||^2, 0, 1)`` (0 when ``a = b``)."""
    denom = aa + bb - 2.0 * ab
    gamma = (aa - ab) / denom.clamp_min(torch.finfo(denom.dtype).tiny)
    return torch.where(denom > 0, gamma, torch.zeros_like(gamma)).clamp(0.0, 1.0)


def _min_norm_point_frank_wolfe(q: Tensor, max_iter: int) -> Tensor:
    """Frank-Wolfe on the simplex with exact line search (Jaggi 2013; Sener & Koltun 2018, Alg. 2).
    Start: the best min-norm point over all pairs of vertices. Step: vertex ``t = argmin_j (Q a)_j``,
    ``a <- (1 - gamma) a + gamma e_t`` with the exact segment minimiser ``gamma``. Every iterate is a
    convex combination of vertices (never negative); ``f(a_T) - f* <= 2 C_f / (T + 2)`` with curvature
    ``C_f = 2 max_ij (Q_ii + Q_jj - 2 Q_ij)``."""
    k = q.shape[0]
    diag = q.diagonal()
    gamma = _segment_min_norm(diag[:, None], q, diag[None, :])  # [i, j]: weight on vertex j
    pair_objective = (1 - gamma) ** 2 * diag[:, None] + 2 * gamma * (1 - gamma) * q + gamma ** 2 * diag[None, :]
    vertices = torch.arange(k, device=q.device)
    best = pair_objective.flatten().argmin()
    g = gamma.flatten().index_select(0, best.view(1))
    alpha = (1 - g) * (vertices == best // k).to(q.dtype) + g * (vertices == best % k).to(q.dtype)
    for _ in range(max_iter):
        q_alpha = q @ alpha
        t = q_alpha.argmin()
        step = _segment_min_norm(alpha @ q_alpha, q_alpha.index_select(0, t.view(1)), diag.index_select(0, t.view(1)))
        alpha = (1 - step) * alpha + step * (vertices == t).to(q.dtype)
    return alpha
