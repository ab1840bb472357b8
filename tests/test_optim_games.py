"""Known-answer tests of the game optimizers on games whose behaviour is known in closed form.

References: Gidel et al. (ICLR 2019) for GDA / extragradient / past extragradient on bilinear games,
Chavdarova et al. (NeurIPS 2019) for SVRE on the stochastic bilinear game, Chavdarova et al.
(ICLR 2021) for Lookahead-minmax. Reference implementations below are written with plain tensors.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_bench.optim import (
    BASES,
    RULES,
    FiniteSum,
    FiniteSumGame,
    GameOptimizerConfigError,
    ParamAverage,
    build_game_optimizer,
)
from gan_bench.optim.toy_games import BilinearGame, RockPaperScissors, StochasticBilinearGame
from gan_bench.registry import target_path

F64 = torch.float64


def optimizer_node(rule: str, base: str, g: dict, d: dict, lookahead: dict | None = None,
                   rule_keys: dict | None = None) -> dict:
    """The config's ``optimizer`` node: an update rule and a base optimizer by their registered names."""
    c: dict = {"rule": {"_target_": target_path(RULES.entry(rule).cls), **(rule_keys or {})},
               "base": {"_target_": target_path(BASES.entry(base).cls)}, "g": g, "d": d}
    if lookahead is not None:
        c["lookahead"] = lookahead
    return c


def cfg(rule: str, lr: float = 0.1, name: str = "sgd", lookahead: dict | None = None, svre: dict | None = None,
        **player: float) -> dict:
    return optimizer_node(rule, name, {"lr": lr, **player}, {"lr": lr, **player}, lookahead,
                          svre if rule == "svre" else None)  # the SVRE keys exist for rule svre only


def xy_game() -> BilinearGame:
    """min_x max_y x*y from (1, 1)."""
    return BilinearGame(torch.eye(1, dtype=F64), torch.ones(1), torch.ones(1))


def dd_game(d: int = 4) -> BilinearGame:
    """min_x max_y x^T A y with a fixed well-conditioned A (singular values in [0.5, 1.5])."""
    gen = torch.Generator().manual_seed(3)
    u, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64))
    v, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64))
    A = u @ torch.diag(torch.linspace(0.5, 1.5, d, dtype=F64)) @ v.T
    return BilinearGame(A, torch.randn(d, generator=gen, dtype=F64), torch.randn(d, generator=gen, dtype=F64))


def point(game) -> torch.Tensor:
    return torch.cat([game.x, game.y]).clone()


def field(A: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Reference vector field of x^T A y: (A y, -A^T x)."""
    d = A.shape[0]
    x, y = z[:d], z[d:]
    return torch.cat([A @ y, -(A.T @ x)])


# ---------------------------------------------------------------- toy games themselves
def test_toy_game_gradients_match_autograd() -> None:
    game = dd_game(3)
    x, y = game.x.clone().requires_grad_(), game.y.clone().requires_grad_()
    gx, gy = torch.autograd.grad(x @ game.A @ y, (x, y))
    got = game.grad(("G", "D"), game.sample())
    assert torch.allclose(got["G"][0], gx) and torch.allclose(got["D"][0], -gy)

    sgame = StochasticBilinearGame.random(n=5, d=3, a_noise=0.5, bc_noise=1.0, seed=0)
    per_term = []
    for i in range(5):
        x, y = sgame.x.clone().requires_grad_(), sgame.y.clone().requires_grad_()
        f = x @ sgame.A[i] @ y + sgame.b[i] @ x + sgame.c[i] @ y
        gx, gy = torch.autograd.grad(f, (x, y))
        got = sgame.grad(("G", "D"), torch.tensor(i))
        assert torch.allclose(got["G"][0], gx) and torch.allclose(got["D"][0], -gy)
        per_term.append(torch.cat([gx, -gy]))
    full = sgame.mean_grad(("G", "D"))
    assert torch.allclose(torch.cat([full["G"][0], full["D"][0]]), torch.stack(per_term).mean(0))
    # the stated equilibrium zeroes the mean field
    xs, ys = sgame.solution()
    for p, v in zip(sgame.params("G") + sgame.params("D"), (xs, ys)):
        p.data.copy_(v)
    full = sgame.mean_grad(("G", "D"))
    assert full["G"][0].abs().max() < 1e-12 and full["D"][0].abs().max() < 1e-12

    rps = RockPaperScissors(torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.5, 0.0]))
    a, b = rps.x.clone().requires_grad_(), rps.y.clone().requires_grad_()
    loss = torch.softmax(a, 0) @ RockPaperScissors.M @ torch.softmax(b, 0)
    ga, gb = torch.autograd.grad(loss, (a, b))
    got = rps.grad(("G", "D"))
    assert torch.allclose(got["G"][0], ga) and torch.allclose(got["D"][0], -gb)
    # M is the rock-paper-scissors loss of the row player: paper (1) beats rock (0), etc.
    assert RockPaperScissors.M[1, 0] == -1 and RockPaperScissors.M[2, 1] == -1 and RockPaperScissors.M[0, 2] == -1


# ---------------------------------------------------------------- deterministic bilinear games
def test_simultaneous_gda_spirals_out_at_the_known_rate() -> None:
    eta = 0.1
    game = xy_game()
    opt = build_game_optimizer(cfg("simultaneous", eta), game)
    for t in range(1, 201):
        opt.step()
        # z_{t+1} = (I - eta K) z_t with K^2 = -I:  |z_t|^2 = (1 + eta^2)^t |z_0|^2
        assert game.distance() ** 2 == pytest.approx(2.0 * (1 + eta**2) ** t, rel=1e-10)

    game = dd_game()
    opt = build_game_optimizer(cfg("simultaneous", eta), game)
    d0, previous = game.distance(), game.distance()
    for _ in range(1, 301):
        opt.step()
        assert game.distance() > previous  # each singular direction grows by sqrt(1 + eta^2 s_i^2)
        previous = game.distance()
    assert previous >= d0 * (1 + (eta * 0.5) ** 2) ** (300 / 2) * (1 - 1e-9)


@pytest.mark.parametrize("make", [xy_game, dd_game])
def test_alternating_gda_is_bounded_but_does_not_converge(make) -> None:
    eta = 0.2
    game = make()
    opt = build_game_optimizer(cfg("alternating", eta), game)
    # x' = x - eta A y, y' = y + eta A^T x' conserves Q = |x|^2 + |y|^2 + eta x^T A y (a positive-definite
    # form for eta |A| < 2): the iterates stay on an ellipse around the equilibrium.
    Q = lambda: float(game.x @ game.x + game.y @ game.y + eta * game.x @ game.A @ game.y)  # noqa: E731
    q0, d0 = Q(), game.distance()
    distances = []
    for _ in range(2000):
        opt.step()
        assert Q() == pytest.approx(q0, rel=1e-9)
        distances.append(game.distance())
    assert max(distances) < 2 * d0 and min(distances) > 0.3 * d0


def test_extragradient_contracts_at_the_known_rate() -> None:
    eta = 0.3
    game = xy_game()
    opt = build_game_optimizer(cfg("extragradient", eta), game)
    for t in range(1, 201):
        opt.step()
        # z_{t+1} = ((1 - eta^2) I - eta K) z_t:  |z_t|^2 = (1 - eta^2 + eta^4)^t |z_0|^2
        assert game.distance() ** 2 == pytest.approx(2.0 * (1 - eta**2 + eta**4) ** t, rel=1e-9)
    # d-dim: each singular pair (s_i) contracts by sqrt(1 - (eta s_i)^2 + (eta s_i)^4), slowest at s_min = 0.5
    eta, game = 0.5, dd_game()
    opt = build_game_optimizer(cfg("extragradient", eta), game)
    d0, rho = game.distance(), math.sqrt(1 - (eta * 0.5) ** 2 + (eta * 0.5) ** 4)
    for t in range(1, 1001):
        opt.step()
        assert game.distance() <= d0 * rho**t * (1 + 1e-9) + 1e-15
    assert game.distance() < 1e-10


def test_optimistic_is_past_extragradient_and_converges() -> None:
    eta = 0.3
    game = dd_game()
    opt = build_game_optimizer(cfg("optimistic", eta), game)
    # Popov's past extragradient written out: w_{t+1/2} = w_t - eta g_{t-1/2}; w_{t+1} = w_t - eta F(w_{t+1/2})
    w, previous = point(game), None
    for _ in range(1500):
        half = w if previous is None else w - eta * previous
        previous = field(game.A, half)
        w = w - eta * previous
        opt.step()
        assert torch.allclose(point(game), w, rtol=0, atol=1e-12)
    assert game.distance() < 1e-6 * torch.linalg.vector_norm(point(dd_game()))
    assert opt.grad_evals == 2 * 1500  # one gradient per player per step


@pytest.mark.parametrize("inner", ["alternating", "simultaneous"])
@pytest.mark.parametrize("nested", [False, True])
def test_lookahead_gda_matches_closed_form_and_converges(inner: str, nested: bool) -> None:
    eta, k, alpha, k2, alpha2 = 0.3, 5, 0.5, 10, 0.5
    # one inner GDA iteration on x*y is linear: z <- B z
    B = torch.tensor([[1.0, -eta], [eta, 1.0]], dtype=F64)
    if inner == "alternating":
        B = torch.tensor([[1.0 - eta**2, -eta], [eta, 1.0]], dtype=F64)  # D moves first
    eye = torch.eye(2, dtype=F64)
    slow_map = (1 - alpha) * eye + alpha * torch.linalg.matrix_power(B, k)  # slow <- slow + alpha (B^k slow - slow)
    period, period_map = k, slow_map
    if nested:  # super <- super + alpha2 (slow_map^(k2/k) super - super)
        period, period_map = k2, (1 - alpha2) * eye + alpha2 * torch.linalg.matrix_power(slow_map, k2 // k)
    game = xy_game()
    la = {"k": k, "alpha": alpha, "k2": k2 if nested else 0, "alpha2": alpha2}
    opt = build_game_optimizer(cfg(inner, eta, lookahead=la), game)
    z0 = point(game)
    for t in range(1, 1001):
        info = opt.step()
        assert info["lookahead_sync"] == float(t % k == 0)
        if t % period == 0:
            expected = torch.linalg.matrix_power(period_map, t // period) @ z0
            assert torch.allclose(point(game), expected, rtol=1e-9, atol=1e-13)
    assert game.distance() < 1e-8


def test_lookahead_converges_on_the_d_dimensional_game() -> None:
    game = dd_game()
    opt = build_game_optimizer(cfg("alternating", 0.3, lookahead={"k": 5, "alpha": 0.5}), game)
    for _ in range(2000):
        opt.step()
    assert game.distance() < 1e-6


def test_n_dis_schedule() -> None:
    eta = 0.1
    # alternating, n_dis=2: y += eta x twice, then x -= eta y
    game = xy_game()
    build_game_optimizer(cfg("alternating", eta), game, n_dis=2).step()
    x, y = 1.0, 1.0
    y = y + eta * x
    y = y + eta * x
    x = x - eta * y
    assert (float(game.x), float(game.y)) == pytest.approx((x, y), abs=1e-15)
    # simultaneous, n_dis=3: two D-only steps, then both players from the same point
    game = xy_game()
    build_game_optimizer(cfg("simultaneous", eta), game, n_dis=3).step()
    x, y = 1.0, 1.0
    y = y + 2 * eta * x
    x, y = x - eta * y, y + eta * x
    assert (float(game.x), float(game.y)) == pytest.approx((x, y), abs=1e-15)


def test_extrapolation_with_adam_updates_moments_and_restores_parameters() -> None:
    game = xy_game()
    opt = build_game_optimizer(cfg("extragradient", 0.01, name="adam"), game)
    opt.step()
    for name in ("G", "D"):
        assert int(opt.optimizers[name].state[game.params(name)[0]]["step"]) == 2  # extrapolation + update
    # the update starts from w_0: reference ExtraAdam with two shared-moment Adam steps
    ref = [torch.ones(1, dtype=F64, requires_grad=True) for _ in range(2)]
    adams = [torch.optim.Adam([r], lr=0.01) for r in ref]
    w0 = [r.detach().clone() for r in ref]
    for r, a, g in zip(ref, adams, (ref[1].detach(), -ref[0].detach())):
        r.grad = g.clone()
        a.step()
    g_half = (ref[1].detach().clone(), -ref[0].detach().clone())
    for r, a, g, w in zip(ref, adams, g_half, w0):
        r.data.copy_(w)
        r.grad = g
        a.step()
    assert torch.equal(game.x, ref[0].detach()) and torch.equal(game.y, ref[1].detach())

    game = xy_game()
    opt = build_game_optimizer(cfg("optimistic", 0.01, name="adam"), game)
    opt.step()
    opt.step()
    for name in ("G", "D"):
        assert int(opt.optimizers[name].state[game.params(name)[0]]["step"]) == 2  # one per gradient


# ---------------------------------------------------------------- stochastic finite-sum bilinear game
def stochastic_game() -> StochasticBilinearGame:
    return StochasticBilinearGame.random(n=20, d=2, a_noise=0.2, bc_noise=0.3, seed=0)


def test_stochastic_extragradient_plateaus_while_svre_converges() -> None:
    budget, results = 8000, {}
    for rule in ("extragradient", "svre"):
        torch.manual_seed(0)
        game = stochastic_game()
        opt = build_game_optimizer(cfg(rule, 0.3, svre={"epoch_length": 20, "refresh": "random"}), game)
        history = []
        while opt.grad_evals < budget:  # SVRE's full gradients are counted
            opt.step()
            history.append(game.distance())
        results[rule] = history
    seg, svre = results["extragradient"], results["svre"]
    assert min(seg[len(seg) // 2:]) > 1e-2  # noise floor: no progress over the second half
    assert svre[-1] < seg[-1] / 100
    assert svre[-1] < 1e-5


def test_svre_estimate_is_mu_at_the_snapshot_and_unbiased_elsewhere() -> None:
    torch.manual_seed(0)
    game = stochastic_game()
    opt = build_game_optimizer(cfg("svre", 0.1, svre={"epoch_length": 50, "refresh": "epoch"}), game)
    for _ in range(5):
        opt.step()
    opt.refresh_snapshot()
    players = ("G", "D")
    plain = torch.stack([torch.cat([g[0] for g in game.grad(players, torch.tensor(i)).values()]) for i in range(20)])
    exact_mean = plain.mean(0)
    mu = torch.cat([opt.mu[p][0] for p in players])
    assert torch.allclose(mu, exact_mean, atol=1e-14)
    est = torch.stack([torch.cat([g[0] for g in opt.estimate(players, torch.tensor(i)).values()]) for i in range(20)])
    assert plain.var(0).sum() > 1e-2  # the plain stochastic gradients are noisy ...
    assert (est - mu).abs().max() < 1e-14  # ... the SVRE estimate at the snapshot is exactly mu
    # away from the snapshot the estimate is unbiased: its mean over the finite sum is the full gradient
    with torch.no_grad():
        game.params("G")[0].add_(0.5)
        game.params("D")[0].sub_(0.3)
    est = torch.stack([torch.cat([g[0] for g in opt.estimate(players, torch.tensor(i)).values()]) for i in range(20)])
    full = torch.cat([g[0] for g in game.mean_grad(players).values()])
    assert torch.allclose(est.mean(0), full, atol=1e-12)


def test_svre_step_matches_reference_implementation() -> None:
    eta, n, epoch = 0.2, 20, 3
    torch.manual_seed(5)
    game = stochastic_game()
    opt = build_game_optimizer(cfg("svre", eta, svre={"epoch_length": epoch, "refresh": "epoch"}), game)
    A, b, c = game.A, game.b, game.c
    d = A.shape[1]

    def F(z: torch.Tensor, i: int | None) -> torch.Tensor:
        """Field of term i, or the mean field for i=None."""
        x, y = z[:d], z[d:]
        Ai, bi, ci = (A.mean(0), b.mean(0), c.mean(0)) if i is None else (A[i], b[i], c[i])
        return torch.cat([Ai @ y + bi, -(Ai.T @ x + ci)])

    w = point(game)
    torch.manual_seed(5)
    for t in range(10):
        if t % epoch == 0:
            ws, mu = w.clone(), F(w, None)
        i = int(torch.randint(n, ()))
        half = w - eta * (F(w, i) - F(ws, i) + mu)
        j = int(torch.randint(n, ()))
        w = w - eta * (F(half, j) - F(ws, j) + mu)
    torch.manual_seed(5)
    for _ in range(10):
        opt.step()
    assert torch.allclose(point(game), w, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- rock-paper-scissors
def rps_game() -> RockPaperScissors:
    return RockPaperScissors(torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.5, 0.0]))


@pytest.mark.parametrize("rule", ["simultaneous", "alternating"])
def test_gda_cycles_on_rock_paper_scissors(rule: str) -> None:
    game = rps_game()
    opt = build_game_optimizer(cfg(rule, 1.0), game)
    distances = []
    for _ in range(1000):
        opt.step()
        distances.append(game.distance())
    assert min(distances[500:]) > 0.3  # never approaches uniform play


@pytest.mark.parametrize(
    "rule, lookahead",
    [("extragradient", None), ("optimistic", None), ("alternating", {"k": 10, "alpha": 0.5}),
     ("simultaneous", {"k": 10, "alpha": 0.5})],
)
def test_extragradient_and_lookahead_reach_uniform_play(rule: str, lookahead: dict | None) -> None:
    game = rps_game()
    opt = build_game_optimizer(cfg(rule, 1.0, lookahead=lookahead), game)
    for _ in range(1000):
        opt.step()
    assert game.distance() < 1e-6
    assert torch.allclose(game.p, torch.full((3,), 1 / 3, dtype=F64), atol=1e-6)


# ---------------------------------------------------------------- gradient-evaluation counts
class CountingGame(FiniteSumGame):
    """Wraps a finite-sum game and counts gradient evaluations independently of the optimizer."""

    def __init__(self, game: StochasticBilinearGame) -> None:
        self.inner, self.count = game, 0
        self.players = game.players

    @property
    def finite_sum_size(self) -> int:
        return self.inner.finite_sum_size

    def finite_sum(self, noise_set: int = 0) -> "CountingSum":
        return CountingSum(self, self.inner.finite_sum(noise_set))

    def restore_finite_sum(self, state: dict) -> "CountingSum":
        return CountingSum(self, self.inner.restore_finite_sum(state))

    def params(self, name):
        return self.inner.params(name)

    def sample(self):
        return self.inner.sample()

    def grad(self, names, sample):
        self.count += len(names)
        return self.inner.grad(names, sample)



class CountingSum(FiniteSum):
    def __init__(self, game: CountingGame, inner: FiniteSum) -> None:
        self.game, self.inner = game, inner

    def sample(self):
        return self.inner.sample()

    def mean_grad(self, names):
        self.game.count += self.game.finite_sum_size * len(names)
        return self.inner.mean_grad(names)


@pytest.mark.parametrize("n_dis", [1, 3])
@pytest.mark.parametrize("lookahead", [None, {"k": 2, "alpha": 0.5}])
@pytest.mark.parametrize(
    "rule, per_player_update",
    [("alternating", 1), ("simultaneous", 1), ("extragradient", 2), ("optimistic", 1), ("svre", 4)],
)
def test_grad_eval_counts(rule: str, per_player_update: int, n_dis: int, lookahead: dict | None) -> None:
    torch.manual_seed(0)
    game = CountingGame(stochastic_game())
    opt = build_game_optimizer(cfg(rule, 0.05, lookahead=lookahead, svre={"epoch_length": 2, "refresh": "epoch"}),
                               game, n_dis=n_dis)
    n = game.finite_sum_size
    for t in range(5):
        info = opt.step()
        # n_dis updates: D-only ones move 1 player, the G+D one moves 2 (alternating: n_dis D + 1 G)
        expected = per_player_update * (n_dis + 1)
        if rule == "svre" and t % 2 == 0:
            expected += 2 * n  # snapshot refresh: full gradient of both players
        assert info["grad_evals"] == expected
    assert opt.grad_evals == game.count


# ---------------------------------------------------------------- bad configurations
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"rule": {"_target_": "gan_bench.optim.gda.GDA"}},
         r"optimizer.rule._target_=gan_bench.optim.gda.GDA cannot be "
         r"imported \(gan_bench.optim.gda has no attribute 'GDA'\)"),
        ({"rule": {"_target_": target_path(RULES.entry("svre").cls), "step": 2}},
         r"optimizer.rule.step does not apply to optimizer/rule=svre \(its keys: epoch_length, noise_set, refresh\)"),
        ({"g": {"lr": 0.1, "betas": [0.5, 0.9]}},
         r"optimizer.g.betas does not apply to optimizer/base=sgd \(its keys: dampening, lr, momentum, nesterov, "),
        ({"g": {"lr": 0.0}}, r"optimizer.g.lr=0.0 is impossible: it must be > 0"),
        ({"d": {"lr": -1.0}}, r"optimizer.d.lr=-1.0 is impossible"),
        ({"d": {"lr": float("nan")}}, r"optimizer.d.lr=nan is impossible"),
        ({"g": {}}, r"optimizer.base.lr=None is impossible"),
        ({"base": {"_target_": target_path(BASES.entry("adam").cls)}, "g": {"lr": 0.1, "betas": [0.5, 1.0]}},
         r"Invalid beta parameter at index 1: 1.0"),
        ({"lookahead": {"k": 5, "alpha": 0.0}}, r"lookahead.alpha=0.0 is impossible: it must lie in \(0, 1\]"),
        ({"lookahead": {"k": 5, "alpha": 1.5}}, r"lookahead.alpha=1.5 is impossible"),
        ({"lookahead": {"k": -1, "alpha": 0.5}}, r"lookahead.k=-1 is impossible: it must be an integer >= 0"),
        ({"lookahead": {"k": 5, "alpha": 0.5, "k2": 12, "alpha2": 0.5}}, r"must be a multiple of lookahead.k=5"),
        ({"lookahead": {"k": 0, "alpha": 0.5, "k2": 10, "alpha2": 0.5}}, r"set lookahead.k > 0"),
        ({"lookahead": {"k": 5, "alpha": 0.5, "k2": 10, "alpha2": 2.0}}, r"lookahead.alpha2=2.0"),
        ({"rule": {"_target_": target_path(RULES.entry("svre").cls), "epoch_length": 10, "refresh": "sometimes"}},
         r"optimizer.rule: Invalid value 'sometimes', expected one of \[random, epoch\]"),
        ({"rule": {"_target_": target_path(RULES.entry("svre").cls), "epoch_length": 0, "refresh": "epoch"}},
         r"optimizer.rule.epoch_length=0 is impossible"),
    ],
)
def test_bad_config_raises_readable_value_error(changes: dict, message: str) -> None:
    c = {**cfg("simultaneous", 0.1), **changes}
    with pytest.raises(ValueError, match=message):
        build_game_optimizer(c, stochastic_game())


def test_bad_game_or_n_dis_raises() -> None:
    with pytest.raises(ValueError, match="finite-sum game"):
        build_game_optimizer(cfg("svre"), xy_game())
    with pytest.raises(ValueError, match="n_dis=0 is impossible"):
        build_game_optimizer(cfg("simultaneous"), xy_game(), n_dis=0)
    with pytest.raises(GameOptimizerConfigError, match="kind='median' is not valid; choose one of: ema, uniform"):
        ParamAverage(nn.Linear(2, 2), "median")
    with pytest.raises(ValueError, match="beta=1.0 is impossible"):
        ParamAverage(nn.Linear(2, 2), "ema", beta=1.0)


def test_omegaconf_config_is_accepted() -> None:
    from omegaconf import OmegaConf

    c = OmegaConf.create(cfg("extragradient", 0.3, lookahead={"k": 5, "alpha": 0.5, "k2": 0, "alpha2": 0.5}))
    game = xy_game()
    opt = build_game_optimizer(c, game)
    for _ in range(500):
        opt.step()
    assert game.distance() < 1e-8


# ---------------------------------------------------------------- parameter averaging
class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def test_param_average_known_values_and_buffers() -> None:
    net = Net()
    uniform, ema = ParamAverage(net, "uniform", start=3), ParamAverage(net, "ema", beta=0.9, start=3)
    seq = [float(s) for s in (4, -2, 7, 1, 3, 10)]
    for step, v in enumerate(seq):
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(v)
            net.bn.running_mean.fill_(100 + step)
        uniform.update(step)
        ema.update(step)
        if step < 3:  # before start the averages follow the raw parameters
            for p in list(uniform.averaged.parameters()) + list(ema.averaged.parameters()):
                assert torch.all(p == v)
    expected_ema = seq[2]
    for v in seq[3:]:
        expected_ema = 0.9 * expected_ema + 0.1 * v
    for p in uniform.averaged.parameters():
        assert torch.allclose(p, torch.full_like(p, sum(seq[3:]) / 3))
    for p in ema.averaged.parameters():
        assert torch.allclose(p, torch.full_like(p, expected_ema))
    for avg in (uniform, ema):
        assert torch.all(avg.averaged.bn.running_mean == 105)  # buffers copied, not averaged
        assert not any(p.requires_grad for p in avg.averaged.parameters())


def test_uniform_average_of_alternating_gda_converges() -> None:
    # alternating GDA cycles around the equilibrium of x*y, so the average of its iterates converges to it
    game = xy_game()
    opt = build_game_optimizer(cfg("alternating", 0.2), game)
    avg_x, avg_y = ParamAverage(game.modules["G"], "uniform"), ParamAverage(game.modules["D"], "uniform")
    for step in range(3000):
        opt.step()
        avg_x.update(step)
        avg_y.update(step)
    assert game.distance() > 1.0
    assert math.hypot(float(avg_x.averaged.w), float(avg_y.averaged.w)) < 0.01
