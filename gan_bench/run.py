"""A run: everything built from the config (data, G, the K discriminators, loss, aggregation, stabilisers, the game
and its optimizer, generator averages), and its checkpoint (``state_dict``)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from gan_bench import distributed
from gan_bench.aggregation import AGGREGATIONS
from gan_bench.build import instantiate, plain
from gan_bench.checkpoint import check_resumable, rng_state, set_rng_state
from gan_bench.config import check_config
from gan_bench.data import load_dataset
from gan_bench.errors import ConfigError
from gan_bench.game import GANGame
from gan_bench.losses import LOSSES
from gan_bench.models import build_discriminators, build_generator
from gan_bench.optim import ParamAverage, build_game_optimizer
from gan_bench.stabilizers import SetupContext, build_stabilizers


def pick_device(name: str) -> torch.device:
    name = str(name)
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is available; use train.device=auto or cpu")
    if distributed.device_for(name) is not None:  # torchrun: this rank's GPU
        return distributed.device_for(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(str(name))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def player_settings(opt_cfg: Any, player: str) -> dict:
    """A player's base-optimizer keys: ``optimizer.base`` with the player's own keys on top."""
    node = plain(opt_cfg)
    return {**node["base"], **{k: v for k, v in (node.get(player) or {}).items() if v is not None}}


class Run:
    """Everything a run holds; ``state_dict`` is the checkpoint."""

    def __init__(self, cfg: DictConfig, run_dir: Path | None, checked: bool = False):
        if not checked:  # the command checked it before anything was written (once per launch)
            check_config(cfg)
        self.cfg, self.run_dir = cfg, Path(run_dir) if run_dir is not None else None
        self.device = pick_device(cfg.train.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        seed_everything(cfg.train.seed)
        self.data = load_dataset(cfg.dataset, batch_size=cfg.train.batch_size)
        if not self.data.streaming:
            self.data.to(self.device)
        distributed.check_batch(cfg.train.batch_size)
        if cfg.train.batch_size > len(self.data):
            raise ConfigError(f"train.batch_size={cfg.train.batch_size} is larger than dataset={cfg.dataset.name} "
                              f"({len(self.data)} examples)")
        self._build_players()
        self._build_game()
        av = cfg.optimizer.averaging
        self.averages: dict[str, ParamAverage] = {}
        if av.ema > 0:
            self.averages["ema"] = ParamAverage(self.G, "ema", beta=av.ema, start=av.start)
        if av.uniform:
            self.averages["uniform"] = ParamAverage(self.G, "uniform", start=av.start)
        g = torch.Generator().manual_seed(cfg.train.seed + 10_000)
        self.fixed_z = torch.randn(cfg.train.n_grid, cfg.model.z_dim, generator=g).to(self.device)
        self.iteration = 0
        self.elapsed = 0.0  # training wall clock, summed over (re)starts
        self.history: list[dict] = []  # evaluation results
        self.best: dict[str, Any] = {}
        self.rollbacks: list[dict] = []  # divergence rollbacks: where, to which iteration, the new seed and lr factor
        self.cost = self._cost()

    def _build_players(self) -> None:
        cfg, shape = self.cfg, self.data.shape
        self.G = distributed.prepare_models(cfg, build_generator(cfg, shape), self.device).to(self.device)
        self.D = build_discriminators(cfg, shape).to(self.device)
        agg = instantiate(cfg.aggregation, "aggregation", group=AGGREGATIONS, k=cfg.discriminators.count)
        self.agg = agg.to(self.device)

    def _build_game(self) -> None:
        cfg = self.cfg
        params = {"G": list(self.G.parameters()) + list(self.agg.parameters()), "D": list(self.D.parameters())}
        stabilizers = build_stabilizers(cfg.stabilizers)
        loss = instantiate(cfg.loss, "loss", group=LOSSES)
        self.game = GANGame(self.G, self.D, loss, self.agg, stabilizers, self.data, cfg.train.batch_size,
                            cfg.model.z_dim, self.device)
        self.opt = build_game_optimizer(cfg.optimizer, self.game, n_dis=cfg.train.n_dis)
        d_opt = player_settings(cfg.optimizer, "d")
        stabilizers.setup(SetupContext(params, d_lr=d_opt["lr"], d_betas=tuple(d_opt.get("betas", (0.5, 0.999))),
                                       d_optimizer=self.opt.optimizers["D"]))

    def _cost(self) -> dict[str, Any]:
        k = self.cfg.discriminators.count
        d_params = sum(p.numel() for p in self.D.parameters())
        return {
            "params_G": sum(p.numel() for p in self.G.parameters()), "params_D_total": d_params,
            "params_D_each": d_params // k, "discriminators": k, "discriminators_layout": self.D.active_layout,
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "world_size": distributed.world_size(), "devices": distributed.devices(self.device),
        }

    # -- checkpoints -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration, "elapsed": self.elapsed,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "aggregation": self.agg.state_dict(),
            "optimizer": self.opt.state_dict(), "game": self.game.state_dict(),
            "averages": {k: a.state_dict() for k, a in self.averages.items()},
            "history": self.history, "best": self.best, "cost": self.cost, "rollbacks": self.rollbacks,
            "rng": rng_state(),
            "config": plain(self.cfg),
        }

    def load_state_dict(self, sd: dict) -> None:
        from gan_bench.trust import complete

        check_resumable(complete(sd["config"]), plain(self.cfg), sd.get("path", "?"))
        self.G.load_state_dict(sd["G"])
        self.D.load_state_dict(sd["D"])
        self.agg.load_state_dict(sd["aggregation"])
        self.opt.load_state_dict(sd["optimizer"])
        self.game.load_state_dict(sd["game"])
        for k, a in self.averages.items():
            a.load_state_dict(sd["averages"][k])
        self.iteration, self.elapsed = sd["iteration"], sd["elapsed"]
        self.history, self.best, self.rollbacks = sd["history"], sd["best"], list(sd["rollbacks"])
        self.cost.update({k: v for k, v in sd["cost"].items() if k.startswith("flops")})
        set_rng_state(sd["rng"])

    @property
    def grad_evals(self) -> int:
        return self.opt.grad_evals

    # -- sampling ----------------------------------------------------------------------------------------------
    def generator(self, which: str) -> torch.nn.Module:
        return self.G if which == "raw" else self.averages[which].averaged

    @torch.no_grad()
    def samples(self, which: str, z: torch.Tensor) -> torch.Tensor:
        g = self.generator(which)
        was = g.training
        g.eval()
        try:
            return g(z)
        finally:
            g.train(was)
