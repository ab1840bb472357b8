"""Known-answer tests for gan_bench.aggregation (Albuquerque, Monteiro et al., ICML 2019)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torch import nn

from gan_bench.aggregation import (
    AGGREGATIONS,
    GMAN_AUTO_PENALTY,
    MAX_EXACT_K,
    build_aggregation,
    min_norm_point,
    per_loss_grads,
)

SOLVERS = ("exact", "interior_point", "frank_wolfe")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ----------------------------------------------------------------------------------------------- references
def slsqp_min_norm(gram: np.ndarray, last_only: bool = False) -> np.ndarray:
    """Reference QP: min a^T Q a s.t. sum a = 1, a >= 0 with scipy SLSQP. ``last_only=True`` is the
    paper code's bug: only a_K >= 0 is enforced."""
    k = gram.shape[0]
    scale = gram.diagonal().max()
    q = gram / scale
    bounds = [(None, None)] * (k - 1) + [(0.0, None)] if last_only else [(0.0, None)] * k
    res = minimize(lambda a: a @ q @ a, np.full(k, 1.0 / k), jac=lambda a: 2 * q @ a, method="SLSQP", bounds=bounds,
                   constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1, "jac": lambda a: np.ones(k)}],
                   options={"ftol": 1e-16, "maxiter": 1000})
    assert res.success, res.message
    return res.x


def affine_hull_min_norm(gram: np.ndarray) -> np.ndarray:
    """Unconstrained optimum over the affine hull sum a = 1 (may have negative weights)."""
    k = gram.shape[0]
    kkt = np.block([[gram, -np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
    return np.linalg.solve(kkt, np.r_[np.zeros(k), 1.0])[:k]


def assert_on_simplex(alpha: torch.Tensor | np.ndarray) -> None:
    """The check a solver enforcing only a_K >= 0 fails: every weight >= 0 and they sum to 1."""
    alpha = torch.as_tensor(alpha)
    tol = 1e-9 if alpha.dtype == torch.float64 else 1e-6
    assert (alpha >= 0).all(), f"negative weight in {alpha.tolist()}"
    assert abs(alpha.double().sum().item() - 1.0) < tol, f"weights sum to {alpha.double().sum().item()}"


def objective(gram: np.ndarray, alpha: np.ndarray) -> float:
    return float(alpha @ (gram / gram.diagonal().max()) @ alpha)


def correlated_grads(k: int, p: int, seed: int) -> torch.Tensor:
    """Gradients sharing a common component: the affine-hull optimum then often has negative weights."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(p, generator=g, dtype=torch.float64)
    return common + (0.6 * torch.randn(k, p, generator=g, dtype=torch.float64)
                     * torch.rand(k, 1, generator=g, dtype=torch.float64) * 3)


# Hand-made case: 0 = -1/2 g_1 + 3/4 g_2 + 3/4 g_3, so the affine-hull optimum is (-1/2, 3/4, 3/4) -- the LAST
# weight is non-negative, so a solver enforcing only a_K >= 0 returns a negative a_1.
# True optimum: alpha = (0, 1/2, 1/2), w* = (0, 1).
NEGATIVE_FIRST = torch.tensor([[0.0, 3.0], [-1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)


# ----------------------------------------------------------------------------------------------- MGD / QP
@pytest.mark.parametrize("solver", SOLVERS)
def test_two_gradients_closed_form(solver: str) -> None:
    gen = torch.Generator().manual_seed(0)
    cases = [torch.randn(2, 7, generator=gen, dtype=torch.float64) for _ in range(5)]
    base = torch.randn(7, generator=gen, dtype=torch.float64)
    cases += [torch.stack([base, 3 * base]), torch.stack([3 * base, base]), torch.stack([base, -2 * base])]
    for grads in cases:
        g1, g2 = grads
        expected = (((g2 - g1) @ g2) / (g1 - g2).pow(2).sum()).clamp(0, 1).item()
        alpha = min_norm_point(grads @ grads.T, solver)
        assert alpha[0].item() == pytest.approx(expected, abs=1e-9)
        assert_on_simplex(alpha)
    # the clipped cases are actually clipped
    assert min_norm_point(cases[5] @ cases[5].T, solver).tolist() == pytest.approx([1.0, 0.0])
    assert min_norm_point(cases[6] @ cases[6].T, solver).tolist() == pytest.approx([0.0, 1.0])


def _qp_cases() -> list[tuple[str, torch.Tensor]]:
    cases = []
    for k in range(3, 9):
        for p, seed in [(k + 3, 10 * k), (50, 10 * k + 1)]:
            cases.append((f"gauss-K{k}-P{p}",
                          torch.randn(k, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)))
        cases.append((f"corr-K{k}", correlated_grads(k, k + 4, seed=100 + k)))
        cases.append((f"rankdef-K{k}-P2",
                      torch.randn(k, 2, generator=torch.Generator().manual_seed(200 + k), dtype=torch.float64)))
        cases.append((f"rankdef-K{k}-P{k - 1}", correlated_grads(k, k - 1, seed=300 + k)))
    cases.append(("negative-first", NEGATIVE_FIRST))
    return cases


QP_CASES = _qp_cases()


@pytest.mark.parametrize("solver", ["exact", "interior_point"])
@pytest.mark.parametrize("device", DEVICES)
def test_exact_solver_matches_slsqp(device: str, solver: str) -> None:
    n_negative = 0
    for name, grads in QP_CASES:
        gram = (grads @ grads.T).numpy()
        k, p = grads.shape
        ref = slsqp_min_norm(gram)
        alpha = min_norm_point(torch.as_tensor(gram, device=device), solver).cpu()
        assert alpha.device.type == "cpu" and alpha.dtype == torch.float64
        assert_on_simplex(alpha)
        a = alpha.numpy()
        assert objective(gram, a) == pytest.approx(objective(gram, ref), abs=1e-6), name
        # the min-norm point w* = alpha^T G is unique even where alpha is not
        np.testing.assert_allclose(a @ grads.numpy(), ref @ grads.numpy(), atol=1e-6 * np.sqrt(gram.diagonal().max()),
                                   err_msg=name)
        if np.linalg.eigvalsh(gram / gram.diagonal().max()).min() > 1e-6:  # strictly convex: alpha unique
            np.testing.assert_allclose(a, ref, atol=1e-6, err_msg=name)
        n_negative += bool((affine_hull_min_norm(gram) < -1e-6).any()) if p >= k else 0
    assert n_negative >= 5, "the QP cases must include optima whose unconstrained weights are negative"


def test_buggy_last_weight_only_solver_is_caught() -> None:
    gram = (NEGATIVE_FIRST @ NEGATIVE_FIRST.T).numpy()
    np.testing.assert_allclose(affine_hull_min_norm(gram), [-0.5, 0.75, 0.75], atol=1e-12)
    buggy = slsqp_min_norm(gram, last_only=True)
    with pytest.raises(AssertionError, match="negative weight"):
        assert_on_simplex(buggy)
    for solver in SOLVERS:
        alpha = min_norm_point(torch.as_tensor(gram), solver, max_iter=200)
        assert_on_simplex(alpha)
        np.testing.assert_allclose(alpha.numpy(), [0.0, 0.5, 0.5], atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_zero_in_convex_hull(solver: str) -> None:
    gen = torch.Generator().manual_seed(3)
    g = torch.randn(6, generator=gen, dtype=torch.float64)
    for grads in [torch.stack([g, -g]), torch.stack([g, torch.randn(6, generator=gen, dtype=torch.float64), -g]),
                  torch.tensor([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)]:
        agg = build_aggregation("mgd", solver=solver, max_iter=500)
        direction, logs = agg.combine(grads)
        assert logs["norm"].item() < 1e-3 if solver == "frank_wolfe" else logs["norm"].item() < 1e-9
        assert_on_simplex(logs["alpha"])
        unit, _ = build_aggregation("mgd", solver=solver, normalize=True, eps=1e-2).combine(grads)
        assert torch.equal(unit, torch.zeros_like(unit)), "normalize must guard ||w*|| ~ 0"


def _large_k_cases() -> list[tuple[str, torch.Tensor]]:
    """K beyond the face enumeration: full-rank, rank-deficient (P < K) and correlated gradients."""
    cases = []
    for k in (13, 24, 40):
        for p, seed in [(k + 3, k), (300, k + 1), (2, k + 2), (k - 1, k + 3)]:
            cases.append((f"gauss-K{k}-P{p}", torch.randn(k, p, generator=torch.Generator().manual_seed(seed),
                                                          dtype=torch.float64)))
        cases.append((f"corr-K{k}", correlated_grads(k, k + 4, seed=400 + k)))
        cases.append((f"corr-K{k}-P200", correlated_grads(k, 200, seed=500 + k)))
    return cases


def test_interior_point_matches_slsqp_beyond_the_face_enumeration() -> None:
    """K = 13...40: never worse than SLSQP's objective, same min-norm point, on the simplex; Frank-Wolfe with its
    default 100 steps, for comparison, is measurably off on some of these cases."""
    fw_worst = 0.0
    for name, grads in _large_k_cases():
        gram = (grads @ grads.T).numpy()
        ref = slsqp_min_norm(gram)
        alpha = min_norm_point(torch.as_tensor(gram), "interior_point")
        assert_on_simplex(alpha)
        a = alpha.numpy()
        assert objective(gram, a) <= objective(gram, ref) + 1e-12, name
        np.testing.assert_allclose(a @ grads.numpy(), ref @ grads.numpy(), atol=1e-6 * np.sqrt(gram.diagonal().max()),
                                   err_msg=name)
        fw = min_norm_point(torch.as_tensor(gram), "frank_wolfe", max_iter=100).numpy()
        fw_worst = max(fw_worst, objective(gram, fw) - objective(gram, ref))
    assert fw_worst > 1e-6  # the cases are hard enough to tell an approximate solver from an exact one


def _degenerate_cases() -> list[tuple[str, torch.Tensor]]:
    """Identical discriminators (duplicate gradients), a zero gradient, all zero, one gradient dimension."""
    gen = torch.Generator().manual_seed(9)
    cases = []
    for k in (5, 16):
        g = torch.randn(k, 7, generator=gen, dtype=torch.float64)
        dup = g.clone()
        dup[1] = dup[0]
        dup[3] = dup[2]
        cases.append((f"duplicates-K{k}", dup))
        zero_row = g.clone()
        zero_row[k // 2] = 0.0
        cases.append((f"zero-row-K{k}", zero_row))
        cases.append((f"all-zero-K{k}", torch.zeros(k, 7, dtype=torch.float64)))
        cases.append((f"P1-K{k}", torch.randn(k, 1, generator=gen, dtype=torch.float64)))
        cases.append((f"copies-K{k}", g[:1].repeat(k, 1)))
    return cases


@pytest.mark.parametrize("solver", SOLVERS)
def test_degenerate_gradients_give_a_finite_exact_answer(solver: str) -> None:
    for name, grads in _degenerate_cases():
        k = grads.shape[0]
        if solver == "exact" and k > MAX_EXACT_K:
            continue
        gram = grads @ grads.T
        alpha = min_norm_point(gram, solver, max_iter=2000)
        assert torch.isfinite(alpha).all(), (solver, name, alpha)
        assert_on_simplex(alpha)
        if gram.abs().max() == 0:
            continue
        ref = slsqp_min_norm(gram.numpy())
        w, w_ref = alpha.numpy() @ grads.numpy(), ref @ grads.numpy()
        tol = (1e-2 if solver == "frank_wolfe" else 1e-6) * np.sqrt(gram.diagonal().max().item())
        assert np.linalg.norm(w) <= np.linalg.norm(w_ref) + tol, (solver, name)


def test_gram_in_float64_keeps_correlated_float32_gradients_psd() -> None:
    from gan_bench.aggregation import gram64

    gen = torch.Generator().manual_seed(1)
    grads = torch.randn(100_000, generator=gen) + 1e-4 * torch.randn(8, 100_000, generator=gen)  # nearly equal rows
    exact = grads.double() @ grads.double().T
    g64 = gram64(grads, chunk=30_000)  # chunks that do not divide P
    assert g64.dtype == torch.float64
    torch.testing.assert_close(g64, exact, rtol=1e-12, atol=0)
    assert torch.linalg.eigvalsh(g64).min() > -1e-9 * exact.diagonal().max()


def test_interior_point_polish_gives_exact_zeros_and_the_face_optimum() -> None:
    gram = (NEGATIVE_FIRST @ NEGATIVE_FIRST.T)
    alpha = min_norm_point(gram, "interior_point")
    assert alpha[0].item() == 0.0 and alpha[1:].tolist() == pytest.approx([0.5, 0.5], abs=1e-14)
    for _name, grads in QP_CASES:  # agrees with the exhaustive face enumeration where both apply
        g = grads @ grads.T
        a, b = min_norm_point(g, "interior_point"), min_norm_point(g, "exact")
        torch.testing.assert_close(a @ grads, b @ grads, atol=1e-7 * g.diagonal().max().sqrt().item(), rtol=0)


def test_frank_wolfe_never_negative_and_within_jaggi_bound() -> None:
    for name, grads in QP_CASES:
        gram = (grads @ grads.T).numpy()
        q = gram / gram.diagonal().max()
        optimum = objective(gram, slsqp_min_norm(gram))
        curvature = 2 * max(q[i, i] + q[j, j] - 2 * q[i, j] for i, j in itertools.product(range(len(q)), repeat=2))
        for steps in (1, 5, 50):
            alpha = min_norm_point(torch.as_tensor(gram), "frank_wolfe", max_iter=steps)
            assert_on_simplex(alpha)
            gap = objective(gram, alpha.numpy()) - optimum
            assert gap >= -1e-9, name
            assert gap <= 2 * curvature / (steps + 2) + 1e-9, name  # Jaggi (2013), Thm. 1


def frank_wolfe_reference(gram: np.ndarray, steps: int) -> np.ndarray:
    """Plain-loop Frank-Wolfe (Sener & Koltun 2018): best pair of vertices, then vertex steps with exact line search."""
    q = gram / gram.diagonal().max()
    k = len(q)

    def segment(a: np.ndarray, b: np.ndarray) -> float:  # argmin_g f((1-g) a + g b), f(x) = x^T Q x
        denom = (a - b) @ q @ (a - b)
        return 0.0 if denom <= 0 else float(np.clip((a @ q @ a - a @ q @ b) / denom, 0.0, 1.0))

    eye = np.eye(k)
    best, alpha = np.inf, None
    for i in range(k):
        for j in range(k):
            g = segment(eye[i], eye[j])
            candidate = (1 - g) * eye[i] + g * eye[j]
            if candidate @ q @ candidate < best:
                best, alpha = candidate @ q @ candidate, candidate
    for _ in range(steps):
        t = int(np.argmin(q @ alpha))
        g = segment(alpha, eye[t])
        alpha = (1 - g) * alpha + g * eye[t]
    return alpha


def test_frank_wolfe_matches_reference_loop() -> None:
    for name, grads in QP_CASES:
        gram = (grads @ grads.T).numpy()
        for steps in (1, 3, 20):
            alpha = min_norm_point(torch.as_tensor(gram), "frank_wolfe", max_iter=steps)
            np.testing.assert_allclose(alpha.numpy(), frank_wolfe_reference(gram, steps), atol=1e-9, err_msg=name)


def test_mgd_combine_common_descent_direction() -> None:
    for name, grads in QP_CASES:
        grads32 = grads.float()
        direction, logs = build_aggregation("mgd", k=grads.shape[0]).combine(grads32)
        assert direction.shape == (grads.shape[1],)
        torch.testing.assert_close(direction, logs["alpha"] @ grads32)
        torch.testing.assert_close(logs["norm"], direction.norm())
        # KKT of the min-norm point: g_k . w* >= ||w*||^2 for all k, with equality on the support
        sq = direction.norm() ** 2
        assert ((grads32 @ direction) >= sq - 1e-4 * grads32.norm(dim=1).max() ** 2).all(), name
        unit, _ = build_aggregation("mgd", normalize=True).combine(grads32)
        if logs["norm"] > 1e-3:
            torch.testing.assert_close(unit, direction / direction.norm())
            assert unit.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_min_norm_point_dtype_and_errors() -> None:
    grads = torch.randn(4, 3)
    alpha = min_norm_point(grads @ grads.T)
    assert alpha.dtype == torch.float32 and alpha.shape == (4,)
    with pytest.raises(ValueError, match="square"):
        min_norm_point(torch.ones(3, 2))
    with pytest.raises(ValueError, match="valid options"):
        min_norm_point(torch.eye(3), solver="newton")
    with pytest.raises(ValueError, match="frank_wolfe"):
        min_norm_point(torch.eye(MAX_EXACT_K + 1))
    with pytest.raises(ValueError, match="max_iter"):
        min_norm_point(torch.eye(3), solver="frank_wolfe", max_iter=0)
    assert_on_simplex(min_norm_point(torch.eye(MAX_EXACT_K + 1), "frank_wolfe"))


# ----------------------------------------------------------------------------------------------- HV
def test_hv_gradient_is_inverse_gap() -> None:
    losses = torch.tensor([0.3, 1.2, 0.7, 2.0], dtype=torch.float64, requires_grad=True)
    agg = build_aggregation("hv", delta=1.5)
    total, logs = agg.loss(losses)
    (grad,) = torch.autograd.grad(total, losses)
    eta = 1.5 * 2.0
    assert logs["eta"].item() == pytest.approx(eta)
    torch.testing.assert_close(grad, 1.0 / (eta - losses.detach()))
    assert total.item() == pytest.approx(-np.log(eta - losses.detach().numpy()).sum())
    torch.testing.assert_close(logs["weights"], grad / grad.sum())


def test_hv_equal_losses_same_direction_as_avg() -> None:
    torch.manual_seed(0)
    theta = torch.randn(5, requires_grad=True)
    feats = torch.randn(3, 5)
    base = (feats @ theta).pow(2)
    losses = base - base.detach() + 0.8  # equal values 0.8, different gradients
    g_hv = torch.autograd.grad(build_aggregation("hv").loss(losses)[0], theta, retain_graph=True)[0]
    g_avg = torch.autograd.grad(build_aggregation("avg").loss(losses)[0], theta)[0]
    assert torch.nn.functional.cosine_similarity(g_hv, g_avg, dim=0).item() == pytest.approx(1.0, abs=1e-6)
    assert (g_hv.norm() / g_avg.norm()).item() > 0


@pytest.mark.parametrize("values", [[-3.0, -1.0, -2.0], [-1.0, 0.0], [0.0, 0.0], [-5.0, 1e-8]])
def test_hv_negative_losses_keep_eta_above_max(values: list[float]) -> None:
    losses = torch.tensor(values, requires_grad=True)
    total, logs = build_aggregation("hv", delta=1.5, eps=1e-6).loss(losses)
    assert (logs["eta"] > losses.detach().max()).item()
    assert torch.isfinite(total).item()
    (grad,) = torch.autograd.grad(total, losses)
    assert (grad > 0).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("delta", [1.0, 0.5, -2.0, float("nan")])
def test_hv_delta_must_exceed_one(delta: float) -> None:
    with pytest.raises(ValueError, match="delta > 1"):
        build_aggregation("hv", delta=delta)


# ----------------------------------------------------------------------------------------------- AVG / GMAN
def test_avg_mean_and_sum() -> None:
    losses = torch.tensor([1.0, 2.0, 6.0])
    total, logs = build_aggregation("avg").loss(losses)
    assert total.item() == pytest.approx(3.0)
    torch.testing.assert_close(logs["weights"], torch.full((3,), 1 / 3))
    assert build_aggregation("avg", reduction="sum").loss(losses)[0].item() == pytest.approx(9.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gman_lambda_zero_is_avg(reduction: str) -> None:
    torch.manual_seed(1)
    theta = torch.randn(4, requires_grad=True)
    losses = (torch.randn(5, 4) @ theta).exp()
    l_gman, logs = build_aggregation("gman", lam=0.0, reduction=reduction).loss(losses)
    l_avg, _ = build_aggregation("avg", reduction=reduction).loss(losses)
    torch.testing.assert_close(l_gman, l_avg, rtol=1e-6, atol=0)
    g_gman = torch.autograd.grad(l_gman, theta, retain_graph=True)[0]
    g_avg = torch.autograd.grad(l_avg, theta)[0]
    torch.testing.assert_close(g_gman, g_avg, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(logs["weights"], torch.full((5,), 0.2))


def test_gman_weights_detached_and_large_lambda_is_max() -> None:
    losses = torch.tensor([0.5, 2.0, 1.25], dtype=torch.float64, requires_grad=True)
    total, logs = build_aggregation("gman", lam=0.8).loss(losses)
    w = torch.softmax(0.8 * losses.detach(), 0)
    assert logs["weights"].sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(logs["weights"], w)
    assert total.item() == pytest.approx((w * losses.detach()).sum().item())
    # weights are constants: dL/dl = w
    torch.testing.assert_close(torch.autograd.grad(total, losses)[0], w)
    big, _ = build_aggregation("gman", lam=200.0).loss(losses)
    assert big.item() == pytest.approx(2.0, abs=1e-6)
    assert (build_aggregation("gman", lam=2.0).loss(losses)[0] > total).item()


def test_gman_auto_lambda_learns() -> None:
    agg = build_aggregation("gman_auto", lam=0.8)
    params = list(agg.parameters())
    assert len(params) == 1
    assert agg.lam.item() == pytest.approx(0.8, rel=1e-6)
    losses = torch.tensor([0.5, 2.0, 1.25], requires_grad=True)
    total, logs = agg.loss(losses)
    w = torch.softmax(0.8 * losses.detach(), 0)
    assert total.item() == pytest.approx((w * losses.detach()).sum().item() - GMAN_AUTO_PENALTY * 0.8, rel=1e-6)
    total.backward()
    # d/dlam [sum_k w_k l_k - c lam] = Var_w(l) - c, chained through lam = softplus(raw): dlam/draw = sigmoid(raw)
    var_w = (w * losses.detach() ** 2).sum() - (w * losses.detach()).sum() ** 2
    expected = (var_w - GMAN_AUTO_PENALTY) * torch.sigmoid(params[0].detach())
    assert params[0].grad is not None
    torch.testing.assert_close(params[0].grad, expected)
    torch.testing.assert_close(losses.grad, w)  # losses' own gradient is the GMAN one
    # equal losses: only the penalty acts, pushing lam up
    agg.zero_grad()
    agg.loss(torch.ones(3))[0].backward()
    assert params[0].grad.item() < 0
    assert logs["lam"].item() > 0


@pytest.mark.parametrize("lam", [0.0, -1.0, float("inf")])
def test_gman_auto_rejects_nonpositive_lambda(lam: float) -> None:
    with pytest.raises(ValueError, match="lam > 0"):
        build_aggregation("gman_auto", lam=lam)


# ----------------------------------------------------------------------------------------------- grads
def test_per_loss_grads_matches_loop() -> None:
    torch.manual_seed(2)
    w1 = torch.randn(3, 4, requires_grad=True)
    b1 = torch.randn(3, requires_grad=True)
    unused = torch.randn(2, requires_grad=True)
    x = torch.randn(6, 4)
    h = torch.tanh(x @ w1.T + b1)
    losses = torch.stack([h.sum(), h.pow(2).mean(), (h[:, 0] * h[:, 2]).sum(), h.abs().max()])
    params = [w1, b1, unused]
    grads = per_loss_grads(losses, params, retain_graph=True)
    assert grads.shape == (4, 12 + 3 + 2)
    for k in range(4):
        row = torch.autograd.grad(losses[k], params, retain_graph=True, allow_unused=True)
        expected = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(row, params)])
        torch.testing.assert_close(grads[k], expected)
    with pytest.raises(ValueError, match="1-D"):
        per_loss_grads(losses.view(2, 2), params)


# ----------------------------------------------------------------------------------------------- model-level
K_D, DIM, Z, N = 4, 5, 3, 16


def _losses_vectorised(gen: nn.Linear, weight: torch.Tensor, bias: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    logits = torch.einsum("nd,kd->nk", gen(z), weight) + bias  # [N, K]
    return nn.functional.softplus(-logits).mean(dim=0)  # non-saturating generator loss per D


def _losses_loop(gen: nn.Linear, discs: list[nn.Linear], z: torch.Tensor) -> torch.Tensor:
    x = gen(z)
    return torch.stack([nn.functional.softplus(-d(x).squeeze(1)).mean() for d in discs])


def _generator_grad(agg_name: str, losses: torch.Tensor, gen: nn.Linear, **kw) -> torch.Tensor:
    agg = build_aggregation(agg_name, k=K_D, **kw)
    params = list(gen.parameters())
    if agg.per_member_inputs:
        return agg.combine(per_loss_grads(losses, params))[0]
    torch.manual_seed(0)
    return torch.cat([g.flatten() for g in torch.autograd.grad(agg.loss(losses)[0], params)])


@pytest.mark.parametrize("name,kw", [("avg", {}), ("avg", {"reduction": "sum"}), ("gman", {"lam": 2.0}),
                                     ("gman_auto", {}), ("hv", {"delta": 1.3}), ("mgd", {}),
                                     ("mgd", {"solver": "frank_wolfe", "normalize": True})])
def test_vectorised_and_loop_discriminators_agree(name: str, kw: dict) -> None:
    torch.manual_seed(5)
    gen = nn.Linear(Z, DIM)
    discs = [nn.Linear(DIM, 1) for _ in range(K_D)]
    weight = torch.cat([d.weight for d in discs]).detach()  # [K, DIM]
    bias = torch.cat([d.bias for d in discs]).detach()  # [K]
    z = torch.randn(N, Z)
    l_vec = _losses_vectorised(gen, weight, bias, z)
    l_loop = _losses_loop(gen, discs, z)
    torch.testing.assert_close(l_vec, l_loop)
    g_vec = _generator_grad(name, l_vec, gen, **kw)
    g_loop = _generator_grad(name, l_loop, gen, **kw)
    assert g_vec.norm() > 0
    torch.testing.assert_close(g_vec, g_loop, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------- errors
def test_build_aggregation_errors() -> None:
    with pytest.raises(ValueError, match="valid options: " + ", ".join(AGGREGATIONS.names())):
        build_aggregation("pareto")
    with pytest.raises(ValueError, match="reduction"):
        build_aggregation("avg", reduction="max")
    with pytest.raises(ValueError, match="lam >= 0"):
        build_aggregation("gman", lam=-0.1)
    with pytest.raises(ValueError, match="eps"):
        build_aggregation("hv", eps=0.0)
    with pytest.raises(ValueError, match="solver"):
        build_aggregation("mgd", solver="qp")
    with pytest.raises(ValueError, match="max_iter"):
        build_aggregation("mgd", solver="frank_wolfe", max_iter=0)
    with pytest.raises(ValueError, match="frank_wolfe"):
        build_aggregation("mgd", solver="exact", k=MAX_EXACT_K + 1)
    assert build_aggregation("mgd", k=MAX_EXACT_K + 1).solver == "interior_point"  # auto beyond the enumeration
    with pytest.raises(ValueError, match=">= 1"):
        build_aggregation("avg", k=0)
    assert build_aggregation("mgd", solver="frank_wolfe", k=MAX_EXACT_K + 1).per_member_inputs


def test_wrong_inputs_and_wrong_entry_point() -> None:
    with pytest.raises(ValueError, match=r"shape \[K\]"):
        build_aggregation("avg").loss(torch.ones(2, 3))
    with pytest.raises(ValueError, match="k=3"):
        build_aggregation("hv", k=3).loss(torch.ones(4))
    with pytest.raises(ValueError, match="K = 0"):
        build_aggregation("gman").loss(torch.ones(0))
    with pytest.raises(ValueError, match=r"\[K, P\]"):
        build_aggregation("mgd").combine(torch.ones(3))
    with pytest.raises(NotImplementedError, match="combines gradients, not losses"):
        build_aggregation("mgd").loss(torch.ones(3))
    assert not build_aggregation("avg").per_member_inputs and build_aggregation("mgd").per_member_inputs
