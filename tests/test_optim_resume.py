"""Resume tests: N steps, save (through torch.save / torch.load), rebuild everything fresh, load, M more
steps must give parameters bit-identical (torch.equal) to an uninterrupted N + M run."""
from __future__ import annotations

import io

import pytest
import torch

from gan_bench.optim import GameOptimizerConfigError, ParamAverage, build_game_optimizer
from gan_bench.optim.toy_games import StochasticBilinearGame
from test_optim_games import optimizer_node

N, M = 7, 6  # not multiples of the Lookahead periods, so syncs fall on both sides of the cut


def make_game() -> StochasticBilinearGame:
    return StochasticBilinearGame.random(n=10, d=3, a_noise=0.3, bc_noise=0.5, seed=2)


def make_cfg(rule: str, name: str, lookahead: dict | None = None) -> dict:
    player = {"lr": 0.05, "weight_decay": 1e-3, **({"betas": [0.5, 0.9]} if name == "adam" else {"momentum": 0.5})}
    svre = {"epoch_length": 3, "refresh": "random"}  # random refresh draws from the torch RNG
    return optimizer_node(rule, name, player, {**player, "lr": 0.08}, lookahead,  # TTUR
                          svre if rule == "svre" else None)


def snapshot_params(game) -> dict[str, list[torch.Tensor]]:
    return {name: [p.detach().clone() for p in game.params(name)] for name in game.players}


def round_trip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def run_resumed(c: dict, n_dis: int, load: bool = True) -> tuple[dict, dict]:
    """Uninterrupted N + M run and an N | save | fresh build | load | M run; returns both final parameters."""
    torch.manual_seed(11)
    game = make_game()
    opt = build_game_optimizer(c, game, n_dis=n_dis)
    for _ in range(N + M):
        opt.step()
    straight = snapshot_params(game)

    torch.manual_seed(11)
    game = make_game()
    opt = build_game_optimizer(c, game, n_dis=n_dis)
    for _ in range(N):
        opt.step()
    saved = round_trip({"opt": opt.state_dict(), "params": snapshot_params(game), "rng": torch.get_rng_state()})
    grad_evals = opt.grad_evals
    del game, opt

    torch.manual_seed(999)  # the resumed run must not depend on the RNG state at rebuild time
    fresh_game = make_game()
    fresh = build_game_optimizer(c, fresh_game, n_dis=n_dis)
    for name in fresh_game.players:
        for p, v in zip(fresh_game.params(name), saved["params"][name]):
            p.data.copy_(v)
    if load:
        fresh.load_state_dict(saved["opt"])
        assert fresh.grad_evals == grad_evals
    torch.set_rng_state(saved["rng"])
    for _ in range(M):
        fresh.step()
    return straight, snapshot_params(fresh_game)


CASES = [
    *[(rule, base, None, n_dis) for rule in ("alternating", "simultaneous", "extragradient", "optimistic", "svre")
      for base, n_dis in (("sgd", 1), ("adam", 2))],
    ("alternating", "adam", {"k": 3, "alpha": 0.5}, 1),
    ("optimistic", "sgd", {"k": 3, "alpha": 0.5}, 2),
    ("svre", "adam", {"k": 4, "alpha": 0.3}, 1),
    ("extragradient", "sgd", {"k": 2, "alpha": 0.5, "k2": 4, "alpha2": 0.5}, 1),
    ("simultaneous", "adam", {"k": 2, "alpha": 0.5, "k2": 6, "alpha2": 0.4}, 2),
]


@pytest.mark.parametrize("rule, base, lookahead, n_dis", CASES)
def test_resume_is_bit_identical(rule: str, base: str, lookahead: dict | None, n_dis: int) -> None:
    straight, resumed = run_resumed(make_cfg(rule, base, lookahead), n_dis)
    for name in straight:
        for a, b in zip(straight[name], resumed[name]):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    "rule, base, lookahead",
    [
        ("simultaneous", "adam", None),  # Adam moments
        ("simultaneous", "sgd", None),  # SGD momentum buffers
        ("optimistic", "sgd", None),  # previous updates
        ("svre", "sgd", None),  # snapshot and mu
        ("extragradient", "sgd", {"k": 3, "alpha": 0.5}),  # slow weights
    ],
)
def test_resume_without_loading_state_differs(rule: str, base: str, lookahead: dict | None) -> None:
    """The bit-identity above is not vacuous: dropping the optimizer state changes the continuation."""
    c = make_cfg(rule, base, lookahead)
    if rule == "svre":
        c["rule"].update(epoch_length=1000, refresh="epoch")  # only the initial snapshot, taken before the cut
    straight, resumed = run_resumed(c, 1, load=False)
    assert not all(torch.equal(a, b) for name in straight for a, b in zip(straight[name], resumed[name]))


@pytest.mark.parametrize("kind", ["ema", "uniform"])
def test_param_average_resume_is_bit_identical(kind: str) -> None:
    def build():
        torch.manual_seed(3)
        game = make_game()
        return game, build_game_optimizer(make_cfg("extragradient", "adam"), game), ParamAverage(
            game.modules["G"], kind, beta=0.8, start=2)

    game, opt, avg = build()
    for step in range(N + M):
        opt.step()
        avg.update(step)
    straight = avg.averaged.w.detach().clone()

    game, opt, avg = build()
    for step in range(N):
        opt.step()
        avg.update(step)
    saved = round_trip({"opt": opt.state_dict(), "avg": avg.state_dict(), "params": snapshot_params(game),
                        "rng": torch.get_rng_state()})
    game, opt, avg = build()
    for name in game.players:
        for p, v in zip(game.params(name), saved["params"][name]):
            p.data.copy_(v)
    opt.load_state_dict(saved["opt"])
    avg.load_state_dict(saved["avg"])
    torch.set_rng_state(saved["rng"])
    for step in range(N, N + M):
        opt.step()
        avg.update(step)
    assert torch.equal(avg.averaged.w, straight)
    assert not torch.equal(straight, game.modules["G"].w)  # the average is not just the raw parameters


def test_loading_an_incompatible_state_raises() -> None:
    game = make_game()
    eg = build_game_optimizer(make_cfg("extragradient", "sgd"), game)
    with pytest.raises(ValueError, match="cannot load the state of rule 'extragradient' into a 'optimistic'"):
        build_game_optimizer(make_cfg("optimistic", "sgd"), game).load_state_dict(eg.state_dict())
    la = build_game_optimizer(make_cfg("extragradient", "sgd", {"k": 3, "alpha": 0.5}), game)
    with pytest.raises(GameOptimizerConfigError, match="without Lookahead"):
        la.load_state_dict(eg.state_dict())
    with pytest.raises(ValueError, match="k=3"):
        build_game_optimizer(make_cfg("extragradient", "sgd", {"k": 5, "alpha": 0.5}), game).load_state_dict(
            la.state_dict())
