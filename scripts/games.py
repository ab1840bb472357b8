"""Plot game-optimizer trajectories on bilinear games (a few seconds on CPU).

Top: min_x max_y x*y from (1, 1) with simultaneous and alternating GDA, extragradient, optimistic
GDA and Lookahead-GDA (phase portrait, and distance to the equilibrium against gradient
evaluations). Bottom: the stochastic finite-sum bilinear game of Chavdarova et al. (2019),
stochastic extragradient against SVRE (SVRE's full gradients counted).

    PYTHONPATH=. python3 scripts/games.py --out games.png
"""
from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from gan_bench.optim import BASES, RULES, build_game_optimizer
from gan_bench.optim.toy_games import BilinearGame, StochasticBilinearGame
from gan_bench.registry import target_path

DETERMINISTIC = [  # label, rule, lookahead
    ("simultaneous GDA", "simultaneous", None),
    ("alternating GDA", "alternating", None),
    ("extragradient", "extragradient", None),
    ("optimistic GDA", "optimistic", None),
    ("Lookahead-GDA (alt, k=5, a=0.5)", "alternating", {"k": 5, "alpha": 0.5}),
]


def sgd_config(rule: str, lr: float, **rule_keys) -> dict:
    """The ``optimizer`` config node: ``rule`` with SGD for both players."""
    return {"rule": {"_target_": target_path(RULES.entry(rule).cls), **rule_keys},
            "base": {"_target_": target_path(BASES.entry("sgd").cls), "lr": lr}}


def trajectory(game, config: dict, budget: int) -> tuple[list, list, list]:
    """Points ``(x[0], y[0])``, distances to the equilibrium and cumulative gradient evaluations along a run."""
    opt = build_game_optimizer(config, game)
    points, distances, evals = [(float(game.x[0]), float(game.y[0]))], [game.distance()], [0]
    while opt.grad_evals < budget:
        opt.step()
        points.append((float(game.x[0]), float(game.y[0])))
        distances.append(game.distance())
        evals.append(opt.grad_evals)
    return points, distances, evals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="games.png", help="output PNG path (default: games.png)")
    parser.add_argument("--steps", type=int, default=150, help="iterations drawn in the x*y phase portrait")
    parser.add_argument("--lr", type=float, default=0.2, help="step size of both players on x*y")
    parser.add_argument("--budget", type=int, default=1200, help="gradient evaluations on x*y")
    parser.add_argument("--stochastic-budget", type=int, default=6000, help="gradient evaluations on the finite sum")
    args = parser.parse_args()

    fig, ((ax_det, ax_det_dist), (ax_sto, ax_sto_dist)) = plt.subplots(2, 2, figsize=(13, 12))
    for label, rule, lookahead in DETERMINISTIC:
        game = BilinearGame(torch.eye(1), torch.ones(1), torch.ones(1))
        config = sgd_config(rule, args.lr)
        if lookahead:
            config["lookahead"] = lookahead
        points, distances, evals = trajectory(game, config, args.budget)
        xs, ys = zip(*points[: args.steps + 1])
        line, = ax_det.plot(xs, ys, lw=1, label=label)
        ax_det_dist.semilogy(evals, distances, color=line.get_color(), label=label)
    ax_det.plot([1], [1], "ko", ms=4, label="start")
    ax_det.plot([0], [0], "k*", ms=12, label="equilibrium")
    ax_det.set(xlim=(-3, 3), ylim=(-3, 3), xlabel="x (min player)", ylabel="y (max player)",
               title=f"min_x max_y x*y from (1, 1), lr={args.lr}, first {args.steps} iterations")
    ax_det.set_aspect("equal")
    ax_det.legend(fontsize=8, loc="lower left")
    ax_det_dist.set(xlabel="gradient evaluations (one player, one sample)", ylabel="distance to (0, 0)",
                    title="x*y: distance to the equilibrium", ylim=(1e-12, 1e4))
    ax_det_dist.legend(fontsize=8, loc="lower left")

    for label, rule, color, width in (("stochastic extragradient", "extragradient", "tab:red", 0.5),
                                      ("SVRE", "svre", "tab:green", 1.5)):
        torch.manual_seed(0)
        game = StochasticBilinearGame.random(n=20, d=1, a_noise=0.2, bc_noise=0.5, seed=0)
        config = sgd_config(rule, 0.3, **({"epoch_length": 20, "refresh": "random"} if rule == "svre" else {}))
        points, distances, evals = trajectory(game, config, args.stochastic_budget)
        xs, ys = zip(*points)
        ax_sto.plot(xs, ys, lw=width, color=color, label=label, alpha=0.8)
        ax_sto_dist.semilogy(evals, distances, color=color, label=label)
    xstar, ystar = game.solution()
    ax_sto.plot([float(xstar[0])], [float(ystar[0])], "k*", ms=12, label="equilibrium")
    ax_sto.set(xlabel="x (min player)", ylabel="y (max player)",
               title="finite-sum bilinear game (n=20, Chavdarova et al. 2019), lr=0.3")
    ax_sto.legend(fontsize=8)
    ax_sto_dist.set(xlabel="gradient evaluations (SVRE's full gradients included)", ylabel="distance to equilibrium",
                    title=f"finite sum: {args.stochastic_budget} gradient evaluations")
    ax_sto_dist.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
