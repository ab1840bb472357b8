"""The training loop, readable top to bottom: build → (resume) → iterate the game optimizer → log,
sample, evaluate, checkpoint → metrics.json."""
from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from gan_bench.aggregation import build_aggregation, resolve_solver
from gan_bench.checkpoint import (atomic_write_json, check_compatible, load_checkpoint, rng_state, save_checkpoint,
                                  set_rng_state)
from gan_bench.config import validate
from gan_bench.cost import count_flops, peak_memory_mb
from gan_bench.data import load_dataset, mixture_centres
from gan_bench.ensemble import DiscriminatorEnsemble
from gan_bench.errors import ConfigError
from gan_bench.game import GANGame
from gan_bench.logging import RunLogger, save_samples, scalars
from gan_bench.models import build_discriminator, build_generator
from gan_bench.optim import ParamAverage, build_game_optimizer

log = logging.getLogger("gan_bench")


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is available; use train.device=auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Run:
    """Everything a run holds; ``state_dict`` is the checkpoint."""

    def __init__(self, cfg: DictConfig, run_dir: Path):
        validate(cfg)
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
        if cfg.train.batch_size > len(self.data):
            raise ConfigError(f"train.batch_size={cfg.train.batch_size} is larger than dataset={cfg.dataset.name} "
                              f"({len(self.data)} examples)")
        shape = self.data.shape
        self.G = build_generator(cfg, shape).to(self.device)
        self.D = DiscriminatorEnsemble.build(lambda: build_discriminator(cfg, shape), cfg.discriminators.count,
                                             spectral_norm=cfg.model.spectral_norm).to(self.device)
        a, K = cfg.aggregation, cfg.discriminators.count
        solver = resolve_solver(a.solver, K)
        try:
            self.agg = build_aggregation(a.name, reduction=a.reduction, lam=a.lam, delta=a.delta, eps=a.eps,
                                         normalize=a.normalize, solver=solver, max_iter=a.max_iter, k=K).to(self.device)
        except ValueError as err:
            raise ConfigError(f"aggregation: {err}") from None
        self.game = GANGame(self.G, self.D, self.agg, self.data, cfg, self.device)
        if cfg.optimizer["update"] == "svre":
            self.game.enable_finite_sum(cfg.optimizer.svre.noise_set)
        try:
            self.opt = build_game_optimizer(cfg.optimizer, self.game, n_dis=cfg.train.n_dis)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if cfg.regularizer.unroll.method == "adam" and cfg.optimizer.name == "adam":
            self.game.unroll_optimizer = self.opt.optimizers["D"]  # unroll with D's current Adam moments
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
        self.cost: dict[str, Any] = {
            "params_G": sum(p.numel() for p in self.G.parameters()),
            "params_D_total": sum(p.numel() for p in self.D.parameters()),
            "params_D_each": sum(p.numel() for p in self.D.parameters()) // cfg.discriminators.count,
            "discriminators": cfg.discriminators.count,
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
        }

    # -- checkpoints -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration, "elapsed": self.elapsed,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "aggregation": self.agg.state_dict(),
            "optimizer": self.opt.state_dict(), "game": self.game.state_dict(),
            "averages": {k: a.state_dict() for k, a in self.averages.items()},
            "history": self.history, "best": self.best, "cost": self.cost, "rng": rng_state(),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
        }

    def load_state_dict(self, sd: dict) -> None:
        check_compatible(sd["config"], OmegaConf.to_container(self.cfg, resolve=True), sd.get("path", "?"))
        self.G.load_state_dict(sd["G"])
        self.D.load_state_dict(sd["D"])
        self.agg.load_state_dict(sd["aggregation"])
        self.opt.load_state_dict(sd["optimizer"])
        self.game.load_state_dict(sd["game"])
        for k, a in self.averages.items():
            a.load_state_dict(sd["averages"][k])
        self.iteration, self.elapsed = sd["iteration"], sd["elapsed"]
        self.history, self.best = sd["history"], sd["best"]
        self.cost.update({k: v for k, v in sd["cost"].items() if k.startswith("flops")})
        set_rng_state(sd["rng"])

    @property
    def grad_evals(self) -> int:
        return self.opt.grad_evals

    def save(self) -> None:
        save_checkpoint(self.run_dir / "checkpoints" / "last.pt", self.state_dict())

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


def _evaluator(run: Run):
    cfg = run.cfg
    if not cfg.eval.metrics:
        return None
    from gan_bench.metrics import Evaluator

    centres = mixture_centres(cfg.dataset.name, cfg.dataset.scale) if run.data.kind == "points" else None
    if run.data.kind == "points":
        real = run.data.x
    elif not run.data.streaming:
        real = run.data.x  # uint8, converted per batch by the evaluator (no float copy of the whole set)
    else:  # a streamed set: its first eval.n_samples images are the reference
        chunks, n = [], 0
        for c in run.data.chunks(cfg.eval.batch_size):
            chunks.append(c)
            n += len(c)
            if n >= cfg.eval.n_samples:
                break
        real = torch.cat(chunks)[: cfg.eval.n_samples]
    cache = Path(cfg.eval.cache_dir).expanduser() if cfg.eval.cache_dir else Path.home() / ".cache" / "gan_bench"
    return Evaluator(list(cfg.eval.metrics), real=real, dataset_key=run.data.key, n_samples=cfg.eval.n_samples,
                     batch_size=cfg.eval.batch_size, device=run.device, cache_dir=cache,
                     inception_weights=cfg.eval.inception_weights, classifier_path=cfg.eval.classifier,
                     classifier_layer=cfg.eval.classifier_layer, mode_centres=centres, mode_std=cfg.dataset.std,
                     modes_min_count=cfg.eval.modes_min_count)


def evaluate(run: Run, evaluator: Any, logger: RunLogger | None, save_best: bool = True) -> list[dict]:
    """The configured metrics for the raw G and each averaged G; best FID tracked with its iteration and time."""
    results, improved = [], False
    for which in run.cfg.eval.generators:
        if which != "raw" and which not in run.averages:
            continue
        gen = torch.Generator(device=run.device).manual_seed(run.cfg.train.seed + 20_000)

        def sample_fn(n: int, _w=which, _g=gen) -> torch.Tensor:
            return run.samples(_w, torch.randn(n, run.cfg.model.z_dim, device=run.device, generator=_g))

        values = evaluator(sample_fn)
        entry = {"iteration": run.iteration, "wall_clock_s": run.elapsed, "generator": which, **values}
        results.append(entry)
        run.history.append(entry)
        for k, v in values.items():
            if v is not None and logger is not None:
                logger.tb.add_scalar(f"eval_{which}/{k}", v, run.iteration)
        for key in ("fid", "fid_classifier"):
            v = values.get(key)
            if v is not None and math.isfinite(v) and (key not in run.best or v < run.best[key]["value"]):
                run.best[key] = {"value": v, "iteration": run.iteration, "wall_clock_s": run.elapsed, "generator": which}
                improved |= key == ("fid" if "fid" in values else "fid_classifier")
    if save_best and improved:  # once, after every generator's entry is in the history
        save_checkpoint(run.run_dir / "checkpoints" / "best.pt", run.state_dict())
    if logger is not None:
        logger.text("eval/protocol", str(evaluator.protocol), run.iteration)
    return results


def _update_cost(run: Run) -> None:
    """The cost figures derived from the run so far (the paper's Table 2 columns)."""
    run.cost["peak_memory_mb"] = peak_memory_mb(run.device)
    run.cost["seconds_per_iteration"] = run.elapsed / max(run.iteration, 1)
    run.cost["grad_evals_per_iteration"] = run.grad_evals / max(run.iteration, 1)
    if "fid" in run.best:
        run.cost["wall_clock_to_best_fid_s"] = run.best["fid"]["wall_clock_s"]


def write_metrics(run: Run, final: dict[str, float], evaluator: Any) -> dict:
    it_s = run.iteration / run.elapsed if run.elapsed > 0 else 0.0
    out = {
        "name": run.cfg.name, "iterations": run.iteration, "wall_clock_s": run.elapsed,
        "iterations_per_s": it_s,
        "grad_evals": run.grad_evals, "final": final, "cost": run.cost, "eval": run.history, "best": run.best,
        "protocol": getattr(evaluator, "protocol", {}) if evaluator is not None else {},
        "unavailable": getattr(evaluator, "unavailable", {}) if evaluator is not None else {},
        "config": OmegaConf.to_container(run.cfg, resolve=True),
    }
    atomic_write_json(run.run_dir / "metrics.json", out)
    return out


def train(cfg: DictConfig, run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoints" / "last.pt"
    resume = cfg.resume not in (None, "", "false", "False")
    if not resume and ckpt.exists():
        raise ConfigError(f"{run_dir} already holds a run ({ckpt}); continue it with resume=true or choose another "
                          "hydra.run.dir — nothing was overwritten")
    sd = None
    if resume:
        src = Path(cfg.resume) if cfg.resume not in ("true", "True") else run_dir
        sd = load_checkpoint(src)  # clear errors for missing / truncated / corrupt files, before building anything
        check_compatible(sd["config"], OmegaConf.to_container(cfg, resolve=True), sd["path"])
    run = Run(cfg, run_dir)
    if sd is not None:
        run.load_state_dict(sd)
        log.info("resumed from %s at iteration %d", sd["path"], run.iteration)
    t = cfg.train
    evaluator = _evaluator(run)
    logger = RunLogger(run_dir, t.iterations, run.iteration, t.progress, t.log_every)
    real_points = run.data.x if run.data.kind == "points" else None
    last: dict[str, float] = {}
    try:
        while run.iteration < t.iterations:
            t0 = time.perf_counter()
            # FLOPs of one iteration, counted on the second (the first one of SVRE also takes the snapshot's
            # full gradient); the counted iteration runs slowly and is left out of the wall clock
            nxt = run.iteration + 1
            run.game.record = nxt % t.log_every == 0 or nxt == t.iterations  # logging statistics only when logged
            measure = (t.measure_flops and "flops_per_iteration" not in run.cost
                       and (run.iteration >= 1 or t.iterations == 1))
            if measure:
                info, run.cost["flops_per_iteration"] = count_flops(run.opt.step)
            else:
                info = run.opt.step()
            run.game.after_step()
            run.iteration += 1
            for a in run.averages.values():
                a.update(run.iteration)
            it = run.iteration
            eval_due = evaluator is not None and ((run.cfg.eval.every and it % run.cfg.eval.every == 0)
                                                  or it == t.iterations)
            boundary = (it % t.log_every == 0 or it % t.sample_every == 0 or it % t.checkpoint_every == 0
                        or eval_due or it == t.iterations)
            if run.device.type == "cuda" and boundary:  # queued GPU work belongs to the training time
                torch.cuda.synchronize(run.device)
            if not measure:
                run.elapsed += time.perf_counter() - t0
            values = None
            if it % t.log_every == 0 or it == t.iterations:
                values = scalars(run.game.last)
                values.update({k: float(v) for k, v in info.items() if isinstance(v, (int, float))})
                if "g/l_k/mean" in values or "g/l_k" in values:
                    values["g/loss"] = values.get("g/l_k/mean", values.get("g/l_k"))
                last = values
            logger.step(it, values)
            if it % t.sample_every == 0 or it == t.iterations:
                save_samples(run.samples("raw", run.fixed_z), run_dir / "samples" / f"iter_{it:07d}.png", logger.tb, it,
                             real_points)
            if eval_due:
                evaluate(run, evaluator, logger)
            if it % t.checkpoint_every == 0 or it == t.iterations:
                _update_cost(run)
                run.save()
                write_metrics(run, last, evaluator)
    except KeyboardInterrupt:  # the last periodic checkpoint is consistent; a half-done step is not saved
        logger.close()
        hint = (f"; continue from the last checkpoint with: gan-bench train resume={run_dir}" if ckpt.exists()
                else "; no checkpoint had been written yet")
        print(f"interrupted at iteration {run.iteration}{hint}", file=sys.stderr)
        raise
    for k, v in run.cost.items():
        if isinstance(v, (int, float)):
            logger.tb.add_scalar(f"cost/{k}", v, run.iteration)
    logger.close()
    return json.loads((run_dir / "metrics.json").read_text())
