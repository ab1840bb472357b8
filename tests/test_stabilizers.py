"""Known-answer tests of gan_bench.stabilizers: gradient penalties, historical averaging, instance noise."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from gan_bench.stabilizers.gradient_penalty import dragan_perturb, gradient_penalty, input_gradients
from gan_bench.stabilizers.historical_averaging import HistoricalAverage
from gan_bench.stabilizers.instance_noise import InstanceNoise


class LinearCritics(nn.Module):
    """K linear critics D_k(x) = w_k · flatten(x), logits [K, B]."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: Tensor) -> Tensor:
        return self.w @ x.flatten(1).T


class QuadraticCritics(nn.Module):
    """K quadratic critics D_k(x) = ½ xᵀ S_k x with S_k = (A_k + A_kᵀ)/2, so ∇_x D_k(x) = S_k x."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.clone())

    def sym(self) -> Tensor:
        return (self.a + self.a.transpose(1, 2)) / 2

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * torch.einsum("bi,kij,bj->kb", x, self.sym(), x)


def mlp_ensemble(k: int, dim: int, seed: int = 0, dtype: torch.dtype = torch.float32):
    """K MLP critics as one vmapped functional module (as the lead's ensemble), plus the K modules."""
    torch.manual_seed(seed)
    models = [nn.Sequential(nn.Linear(dim, 6), nn.Tanh(), nn.Linear(6, 1)).to(dtype) for _ in range(k)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def one(p, b, x):
        return functional_call(base, (p, b), (x,)).squeeze(-1)

    def d_fn(p, x):
        return vmap(one, in_dims=(0, 0, None))(p, buffers, x)

    return models, params, d_fn


# ---------------------------------------------------------------- gradient penalties


def test_wgan_gp_linear_critics_closed_form():
    torch.manual_seed(0)
    w = torch.randn(2, 12)
    w[0] /= w[0].norm()  # ‖w₀‖ = 1 → penalty 0
    w[1] *= 3 / w[1].norm()  # ‖w₁‖ = 3 → penalty (3 − 1)² = 4
    d = LinearCritics(w)
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    gp = gradient_penalty(d, real, fake, "wgan_gp")
    assert gp.shape == (2,)
    torch.testing.assert_close(gp, torch.tensor([0.0, 4.0]), atol=1e-5, rtol=1e-5)
    # d/dw (‖w‖ − 1)² = 2(‖w‖ − 1) w/‖w‖, per critic
    (grad,) = torch.autograd.grad(gp.sum(), d.w)
    norms = w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(grad, 2 * (norms - 1) * w / norms, atol=1e-5, rtol=1e-5)


def test_wgan_gp_center_and_zero_gradient_critic_is_finite():
    w = torch.zeros(2, 4)
    w[1, 0] = 2.0
    d = LinearCritics(w)
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    gp = gradient_penalty(d, x, y, "wgan_gp", center=0.5)
    torch.testing.assert_close(gp, torch.tensor([0.25, 2.25]))
    (grad,) = torch.autograd.grad(gp.sum(), d.w)
    assert torch.isfinite(grad).all()  # ‖∇D‖ = 0 exactly for critic 0: no NaN from the norm


def test_r1_quadratic_critics_closed_form_and_param_gradient():
    torch.manual_seed(1)
    k, dim, b = 2, 3, 7
    d = QuadraticCritics(torch.randn(k, dim, dim))
    x = torch.randn(b, dim)
    r1 = gradient_penalty(d, x, kind="r1")
    s = d.sym()
    closed = torch.einsum("kij,bj->kbi", s, x).pow(2).sum(-1).mean(-1)  # E‖S_k x‖²
    torch.testing.assert_close(r1, closed, atol=1e-5, rtol=1e-5)
    g_pen = torch.autograd.grad(r1.sum(), d.a)[0]
    g_closed = torch.autograd.grad(closed.sum(), d.a)[0]
    torch.testing.assert_close(g_pen, g_closed, atol=1e-5, rtol=1e-5)


def test_dragan_perturbation_statistics():
    torch.manual_seed(2)
    x = 3.0 * torch.randn(2000, 400)
    c = 0.5
    ratio = (dragan_perturb(x, c) - x) / (c * x.std())  # α_i · U_ij, α_i, U_ij ~ U[0, 1]
    assert ratio.min() >= 0 and ratio.max() <= 1 + 1e-5
    assert abs(ratio.mean().item() - 0.25) < 0.005  # E[αU] = 1/4
    assert abs(ratio.pow(2).mean().item() - 1 / 9) < 0.005  # E[α²U²] = 1/9
    per_sample_max = ratio.max(dim=1).values  # ≈ α_i (400 uniforms per sample): α ~ U[0,1] per sample
    assert abs(per_sample_max.mean().item() - 0.5) < 0.03
    assert abs(per_sample_max.std().item() - (1 / 12) ** 0.5) < 0.03


def test_dragan_penalty_linear_critics():
    w = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, 2.0]])
    gp = gradient_penalty(LinearCritics(w), torch.randn(6, 3), kind="dragan", dragan_c=0.5)
    torch.testing.assert_close(gp, torch.tensor([0.0, 1.0]), atol=1e-6, rtol=1e-6)


def test_penalties_match_per_model_loop_for_vmapped_ensemble():
    k, dim, b = 3, 4, 5
    models, params, d_fn = mlp_ensemble(k, dim)
    d = lambda x: d_fn(params, x)  # noqa: E731
    real, fake = torch.randn(b, dim), torch.randn(b, dim)

    grads = input_gradients(d, real)
    assert grads.shape == (k, b, dim)
    for i, m in enumerate(models):
        xi = real.clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(m(xi).sum(), xi)
        torch.testing.assert_close(grads[i], gi)

    for kind in ("wgan_gp", "r1"):
        torch.manual_seed(7)
        pen = gradient_penalty(d, real, fake, kind)
        pgrads = torch.autograd.grad(pen.sum(), list(params.values()), materialize_grads=True)
        torch.manual_seed(7)
        eps = torch.rand(b, 1)
        points = eps * real + (1 - eps) * fake if kind == "wgan_gp" else real
        for i, m in enumerate(models):
            xi = points.clone().requires_grad_(True)
            (gi,) = torch.autograd.grad(m(xi).sum(), xi, create_graph=True)
            ref = gi.pow(2).sum(1).mean() if kind == "r1" else (gi.norm(dim=1) - 1).pow(2).mean()
            torch.testing.assert_close(pen[i], ref)
            ref_grads = torch.autograd.grad(ref, list(m.parameters()), materialize_grads=True)
            for pg, rg in zip(pgrads, ref_grads):
                torch.testing.assert_close(pg[i], rg, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["wgan_gp", "r1", "dragan"])
def test_penalty_gradient_matches_finite_differences(kind):
    _, params, d_fn = mlp_ensemble(2, 3, seed=3, dtype=torch.float64)
    names = list(params)
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)

    def penalty(*values):
        torch.manual_seed(11)  # same interpolation / perturbation at every evaluation
        p = dict(zip(names, values))
        return gradient_penalty(lambda x: d_fn(p, x), real, fake, kind)

    inputs = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    assert torch.autograd.gradcheck(penalty, inputs)


def test_gradient_penalty_rejects_bad_input():
    d = LinearCritics(torch.ones(2, 4))
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match="unknown gradient penalty kind"):
        gradient_penalty(d, x, x, "wgan")
    with pytest.raises(ValueError, match="needs the fake batch"):
        gradient_penalty(d, x, None, "wgan_gp")
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(d, x, torch.randn(2, 4), "wgan_gp")
    with pytest.raises(ValueError, match=r"logits of shape \[K, B\]"):
        gradient_penalty(lambda x: x.sum(1), x, kind="r1")
    with pytest.raises(ValueError, match="dragan_c must be positive"):
        gradient_penalty(d, x, kind="dragan", dragan_c=0.0)


# ---------------------------------------------------------------- historical averaging


def test_historical_average_zero_at_step_one_and_hand_value_after_three_updates():
    theta = nn.Parameter(torch.tensor([1.0, 2.0]))
    ha = HistoricalAverage([theta])
    assert ha.penalty().item() == 0.0
    for value in ([3.0, 0.0], [2.0, 5.0], [0.0, 0.0]):  # three optimizer steps, each followed by update()
        with torch.no_grad():
            theta.copy_(torch.tensor(value))
        ha.update()
    # mean of [1,2], [3,0], [2,5], [0,0] = [1.5, 1.75]; penalty = 1.5² + 1.75² at θ = [0, 0]
    pen = ha.penalty()
    assert pen.item() == pytest.approx(1.5**2 + 1.75**2)
    (grad,) = torch.autograd.grad(pen, theta)
    torch.testing.assert_close(grad, torch.tensor([-3.0, -3.5]))  # 2(θ − mean)


def test_historical_average_stacked_gives_one_value_per_discriminator():
    w = nn.Parameter(torch.zeros(2, 3))
    b = nn.Parameter(torch.zeros(2))
    ha = HistoricalAverage([w, b], stacked=True)
    with torch.no_grad():
        w.copy_(torch.tensor([[2.0, 0.0, 0.0], [0.0, 4.0, 2.0]]))
        b.copy_(torch.tensor([2.0, -2.0]))
    # mean = initial zeros: penalty per row = ‖(w_k, b_k)‖² = 4 + 4 and 16 + 4 + 4
    torch.testing.assert_close(ha.penalty(), torch.tensor([8.0, 24.0]))
    ha.update()  # mean = current/2: penalty per row = ‖(w_k, b_k)/2‖² = 1 + 1 and 4 + 1 + 1
    torch.testing.assert_close(ha.penalty(), torch.tensor([2.0, 6.0]))


def test_historical_average_state_dict_round_trip():
    torch.manual_seed(4)
    p = nn.Parameter(torch.randn(3, 2))
    history = [p.detach().clone()]
    ha = HistoricalAverage([p])
    for _ in range(3):
        with torch.no_grad():
            p.add_(torch.randn(3, 2))
        history.append(p.detach().clone())
        ha.update()
    resumed = HistoricalAverage([p])  # fresh: its mean would only hold the current value
    resumed.load_state_dict(ha.state_dict())
    with torch.no_grad():
        p.add_(1.0)
    history.append(p.detach().clone())
    ha.update()
    resumed.update()
    expected_mean = torch.stack(history).mean(0)
    assert resumed.count == ha.count == 5
    torch.testing.assert_close(resumed.mean[0], expected_mean)
    torch.testing.assert_close(resumed.penalty(), (p - expected_mean).pow(2).sum())
    torch.testing.assert_close(resumed.penalty(), ha.penalty())


def test_historical_average_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one parameter"):
        HistoricalAverage([])
    with pytest.raises(ValueError, match="leading K dimension"):
        HistoricalAverage([torch.zeros(2, 3), torch.zeros(3)], stacked=True)
    ha = HistoricalAverage([torch.zeros(2)])
    with pytest.raises(ValueError, match="does not match parameter"):
        ha.load_state_dict({"mean": [torch.zeros(3)], "count": 2})
    with pytest.raises(ValueError, match="running means"):
        ha.load_state_dict({"mean": [], "count": 2})


# ---------------------------------------------------------------- instance noise


def test_instance_noise_sigma_schedule():
    noise = InstanceNoise(0.2, anneal_iters=100)
    assert noise.sigma(0) == pytest.approx(0.2)
    assert noise.sigma(25) == pytest.approx(0.15)
    assert noise.sigma(100) == 0.0
    assert noise.sigma(1000) == 0.0
    constant = InstanceNoise(0.3, anneal_iters=0)
    assert constant.sigma(0) == constant.sigma(10**6) == pytest.approx(0.3)


def test_instance_noise_has_the_scheduled_std():
    torch.manual_seed(5)
    noise = InstanceNoise(0.4, anneal_iters=10)
    x = torch.full((200_000,), 2.0)
    eps = noise(x, 5) - x
    assert abs(eps.mean().item()) < 0.003
    assert eps.std().item() == pytest.approx(0.2, rel=0.01)
    assert torch.equal(noise(x, 10), x)


def test_instance_noise_rejects_bad_input():
    with pytest.raises(ValueError, match="std must be >= 0"):
        InstanceNoise(-0.1, 10)
    with pytest.raises(ValueError, match="anneal_iters must be >= 0"):
        InstanceNoise(0.1, -1)
    with pytest.raises(ValueError, match="iteration must be >= 0"):
        InstanceNoise(0.1, 10).sigma(-1)
