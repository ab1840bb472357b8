"""Known-answer tests of gan_bench.stabilizers.unrolled: unrolled discriminator parameters (Metz et al. 2017)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from gan_bench.stabilizers.unrolled import unrolled_params

A, LR = 2.0, 0.1


def linear_game(g: torch.Tensor):
    """L_D(d; g) = ½·a·d² − g·d (the D loss closes over G's g) and L_G(g, d) = g·d + ½·g²."""
    d_loss = lambda p: 0.5 * A * p["d"] ** 2 - g * p["d"]  # noqa: E731
    g_loss = lambda p: g * p["d"] + 0.5 * g**2  # noqa: E731
    return d_loss, g_loss


def test_zero_steps_is_the_plain_loss_and_gradient():
    g = torch.tensor(1.5, requires_grad=True)
    d = nn.Parameter(torch.tensor(0.5))
    d_loss, g_loss = linear_game(g)
    params = unrolled_params(d_loss, {"d": d}, steps=0, lr=LR)
    assert params["d"] is d
    plain = g_loss({"d": d})
    loss = g_loss(params)
    torch.testing.assert_close(loss, plain)
    (grad,) = torch.autograd.grad(loss, g)
    assert grad.item() == pytest.approx(0.5 + 1.5)  # ∂/∂g (g·d + ½g²) = d + g


def test_sgd_one_and_two_steps_linear_game_hand_gradient():
    d0, g0 = 0.5, 1.5
    for steps in (1, 2):
        g = torch.tensor(g0, requires_grad=True)
        d = nn.Parameter(torch.tensor(d0))
        d_loss, g_loss = linear_game(g)
        loss = g_loss(unrolled_params(d_loss, {"d": d}, steps=steps, lr=LR))
        (grad,) = torch.autograd.grad(loss, g)
        # d1 = d − η(a·d − g), ∂d1/∂g = η;  d2 = d1 − η(a·d1 − g), ∂d2/∂g = (1 − ηa)·η + η
        d1 = d0 - LR * (A * d0 - g0)
        d_k, dd_dg = (d1, LR) if steps == 1 else (d1 - LR * (A * d1 - g0), (1 - LR * A) * LR + LR)
        # dL_G/dg = d_K + g·∂d_K/∂g + g
        assert loss.item() == pytest.approx(g0 * d_k + 0.5 * g0**2)
        assert grad.item() == pytest.approx(d_k + g0 * dd_dg + g0)
        assert d.grad is None  # the unroll starts from a detached copy of D's parameters


@pytest.mark.parametrize("create_graph", [True, False])
def test_sgd_one_step_nonlinear_game_second_order_term(create_graph):
    d0, g0 = 0.3, 0.8
    g = torch.tensor(g0, requires_grad=True)
    d_loss = lambda p: 0.5 * (p["d"] - g**2) ** 2  # noqa: E731
    params = unrolled_params(d_loss, {"d": torch.tensor(d0)}, steps=1, lr=LR, create_graph=create_graph)
    (grad,) = torch.autograd.grad(g * params["d"], g)
    # d1 = d − η(d − g²), ∂d1/∂g = 2ηg; d/dg [g·d1] = d1 + g·2ηg (first-order only: d1)
    d1 = d0 - LR * (d0 - g0**2)
    assert params["d"].item() == pytest.approx(d1)
    assert grad.item() == pytest.approx(d1 + 2 * LR * g0**2 if create_graph else d1)


def test_adam_one_step_from_optimizer_state_hand_gradient():
    b1, b2, eps = 0.5, 0.999, 1e-8
    d0, g0, m0, v0, t0 = 0.5, 1.5, 0.2, 0.3, 3
    g = torch.tensor(g0, requires_grad=True)
    d_loss, g_loss = linear_game(g)
    state = {"d": {"exp_avg": torch.tensor(m0), "exp_avg_sq": torch.tensor(v0), "step": torch.tensor(float(t0))}}
    params = unrolled_params(
        d_loss, {"d": torch.tensor(d0)}, steps=1, lr=LR, method="adam", betas=(b1, b2), eps=eps, adam_state=state
    )
    loss = g_loss(params)
    (grad,) = torch.autograd.grad(loss, g)
    t = t0 + 1
    gd = A * d0 - g0  # ∂L_D/∂d, with ∂gd/∂g = −1
    m, v = b1 * m0 + (1 - b1) * gd, b2 * v0 + (1 - b2) * gd**2
    mh, vh = m / (1 - b1**t), v / (1 - b2**t)
    s = math.sqrt(vh)
    d1 = d0 - LR * mh / (s + eps)
    dmh, dvh = (1 - b1) / (1 - b1**t), 2 * (1 - b2) * gd / (1 - b2**t)
    du = dmh / (s + eps) - mh * (dvh / (2 * s)) / (s + eps) ** 2  # d/dgd of m̂/(√v̂ + eps)
    dd1_dg = LR * du  # = −η·du·(∂gd/∂g)
    assert params["d"].item() == pytest.approx(d1)
    assert grad.item() == pytest.approx(d1 + g0 * dd1_dg + g0)


def test_adam_zero_state_first_step_and_exactly_zero_gradients_stay_finite():
    g = torch.tensor(1.5, requires_grad=True)
    d_loss, g_loss = linear_game(g)
    params = {"d": torch.tensor(0.5), "unused": torch.zeros(3)}  # "unused" gets exactly-zero gradients
    out = unrolled_params(d_loss, params, steps=2, lr=LR, method="adam")
    (grad,) = torch.autograd.grad(g_loss(out), g)
    assert torch.isfinite(grad)
    torch.testing.assert_close(out["unused"], torch.zeros(3))
    one = unrolled_params(d_loss, params, steps=1, lr=LR, method="adam")
    gd = A * 0.5 - 1.5  # first Adam step from zero moments: θ − η·g/(|g| + eps)
    assert one["d"].item() == pytest.approx(0.5 - LR * gd / (abs(gd) + 1e-8))


def test_unrolled_vmapped_discriminators_gradient_matches_finite_differences():
    torch.manual_seed(0)
    k, dim, b = 2, 2, 6
    models = [nn.Sequential(nn.Linear(dim, 5), nn.Tanh(), nn.Linear(5, 1)).double() for _ in range(k)]
    d_params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def d_fn(p, x):  # [K, B] logits
        return vmap(lambda pk, bk, xx: functional_call(base, (pk, bk), (xx,)).squeeze(-1), in_dims=(0, 0, None))(
            p, buffers, x
        )

    real, z = torch.randn(b, dim, dtype=torch.float64), torch.randn(b, dim, dtype=torch.float64)
    sp = nn.functional.softplus

    def unrolled_g_loss(g_weight):
        fake = z @ g_weight.T  # G's graph is carried by the fake batch
        d_loss = lambda p: (sp(-d_fn(p, real)) + sp(d_fn(p, fake))).mean(1).sum()  # noqa: E731
        p_k = unrolled_params(d_loss, d_params, steps=2, lr=0.5)
        return sp(-d_fn(p_k, fake)).mean(1).sum()

    g_weight = torch.randn(dim, dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(unrolled_g_loss, (g_weight,))
    # and the unroll changes the generator's gradient compared with the plain loss (steps = 0)
    plain = lambda w: sp(-d_fn(d_params, z @ w.T)).mean(1).sum()  # noqa: E731
    g_unrolled = torch.autograd.grad(unrolled_g_loss(g_weight), g_weight)[0]
    g_plain = torch.autograd.grad(plain(g_weight), g_weight)[0]
    assert not torch.allclose(g_unrolled, g_plain, atol=1e-4)


def test_unrolled_params_rejects_bad_input():
    d_loss = lambda p: (p["d"] ** 2).sum()  # noqa: E731
    params = {"d": torch.ones(2)}
    with pytest.raises(ValueError, match="steps must be >= 0"):
        unrolled_params(d_loss, params, steps=-1, lr=0.1)
    with pytest.raises(ValueError, match="learning rate must be positive"):
        unrolled_params(d_loss, params, steps=1, lr=0.0)
    with pytest.raises(ValueError, match="unknown unroll method"):
        unrolled_params(d_loss, params, steps=1, lr=0.1, method="rmsprop")
    with pytest.raises(ValueError, match="scalar loss"):
        unrolled_params(lambda p: p["d"] ** 2, params, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="params is empty"):
        unrolled_params(d_loss, {}, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="does not match parameter"):
        unrolled_params(d_loss, params, steps=1, lr=0.1, method="adam",
                        adam_state={"d": {"exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3), "step": 1}})
