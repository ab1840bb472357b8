"""The training loop, readable top to bottom: build → (resume) → iterate the game optimizer → log, sample, measure
the metrics, checkpoint → metrics.json."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from gan_bench import distributed, faults, guard, runlock
from gan_bench.checkpoint import load_checkpoint, save_checkpoint
from gan_bench.config import plain
from gan_bench.cost import count_flops, peak_memory_mb
from gan_bench.data import load_dataset, mixture_centres
from gan_bench.errors import ConfigError
from gan_bench.files import WriteError, atomic_write_json, remove_stale_temporaries
from gan_bench.report.hparams import log_run_hparams
from gan_bench.run import Run
from gan_bench.runlog import RunLogger, save_samples, scalars
from gan_bench.status import write_status

log = logging.getLogger("gan_bench")


def parse_resume(value: Any) -> str | None:
    """``resume`` as given on the command line: None (start fresh), "true" (this run's folder) or a path."""
    if value in (None, "", False) or str(value) in ("false", "False", "null", "None"):
        return None
    return "true" if str(value) in ("true", "True") else str(value)


# -- metrics during training --------------------------------------------------------------------------------------
def _real_reference(run: Run) -> torch.Tensor:
    """The real data the metrics compare with: the configured split, its first eval.n_samples images if streamed."""
    cfg = run.cfg
    data = run.data if cfg.eval.split == "train" else load_dataset(cfg.dataset, split="test")
    if data.kind == "points" or not data.streaming:
        return data.x  # uint8 images are converted per batch by the evaluator (no float copy of the whole set)
    chunks, n = [], 0
    for c in data.chunks(cfg.eval.batch_size):
        chunks.append(c)
        n += len(c)
        if n >= cfg.eval.n_samples:
            break
    return torch.cat(chunks)[: cfg.eval.n_samples]


def build_evaluator(run: Run):
    cfg = run.cfg
    if not cfg.eval.metrics:
        return None
    from gan_bench.metrics import Evaluator

    centres = mixture_centres(cfg.dataset.name, cfg.dataset.scale) if run.data.kind == "points" else None
    cache = Path(cfg.eval.cache_dir).expanduser() if cfg.eval.cache_dir else Path.home() / ".cache" / "gan_bench"
    key = run.data.key if cfg.eval.split == "train" else run.data.key.replace("-train-", "-test-")
    return Evaluator(list(cfg.eval.metrics), real=_real_reference(run), dataset_key=key, n_samples=cfg.eval.n_samples,
                     batch_size=cfg.eval.batch_size, device=run.device, cache_dir=cache, split=str(cfg.eval.split),
                     inception_weights=cfg.eval.inception_weights, classifier_path=cfg.eval.classifier,
                     classifier_layer=str(cfg.eval.classifier_layer), mode_centres=centres,
                     mode_std=cfg.dataset.get("std"), modes_min_count=cfg.eval.modes_min_count,
                     part=distributed.my_slice, gather=distributed.gather_rows)


def record_metrics(run: Run, evaluator: Any, logger: RunLogger | None, save_best: bool = True) -> list[dict]:
    """The configured metrics for the raw G and each averaged G; best FID tracked with its iteration and time."""
    results, improved = [], False
    for which in map(str, run.cfg.eval.generators):
        if which != "raw" and which not in run.averages:
            continue
        gen = torch.Generator(device=run.device).manual_seed(run.cfg.train.seed + 20_000)

        def sample_fn(n: int, _w=which, _g=gen) -> torch.Tensor:  # data-parallel: this rank's part of the n samples
            z = torch.randn(n, run.cfg.model.z_dim, device=run.device, generator=_g)[distributed.my_slice(n)]
            return run.samples(_w, z)

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
                run.best[key] = {"value": v, "iteration": run.iteration, "wall_clock_s": run.elapsed,
                                 "generator": which}
                improved |= key == ("fid" if "fid" in values else "fid_classifier")
    if save_best and improved and distributed.is_main():  # once, after every generator's entry is in the history
        save_checkpoint(run.run_dir / "checkpoints" / "best.pt", run.state_dict())
    if logger is not None:
        logger.text("eval/protocol", str(evaluator.protocol), run.iteration)
    return results


# -- results ------------------------------------------------------------------------------------------------------
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
        "name": run.cfg.name, "iterations": run.iteration, "wall_clock_s": run.elapsed, "iterations_per_s": it_s,
        "grad_evals": run.grad_evals, "final": final, "cost": run.cost, "eval": run.history, "best": run.best,
        "rollbacks": run.rollbacks, "data": {"skipped_files": list(getattr(run.data, "skipped", []))},
        "protocol": getattr(evaluator, "protocol", {}) if evaluator is not None else {},
        "unavailable": getattr(evaluator, "unavailable", {}) if evaluator is not None else {},
        "config": plain(run.cfg),
    }
    atomic_write_json(run.run_dir / "metrics.json", out)
    return out


# -- the loop -----------------------------------------------------------------------------------------------------
def _step(run: Run) -> dict:
    """One iteration of the game optimizer. FLOPs are counted once, on the second iteration (the first one of SVRE
    also takes the snapshot's full gradient); that iteration runs slowly and is left out of the wall clock."""
    t = run.cfg.train
    nxt = run.iteration + 1
    run.game.record = nxt % t.log_every == 0 or nxt == t.iterations  # logging statistics only when logged
    measure = t.measure_flops and "flops_per_iteration" not in run.cost and (run.iteration >= 1 or t.iterations == 1)
    t0 = time.perf_counter()
    if measure:
        info, run.cost["flops_per_iteration"] = count_flops(run.opt.step)
    else:
        info = run.opt.step()
    run.game.after_step()
    run.iteration += 1
    for a in run.averages.values():
        a.update(run.iteration)
    if run.device.type == "cuda" and _boundary(run):  # queued GPU work belongs to the training time
        torch.cuda.synchronize(run.device)
    if not measure:
        run.elapsed += time.perf_counter() - t0
    return info


def _due(run: Run, every: int) -> bool:
    return run.iteration % every == 0 or run.iteration == run.cfg.train.iterations


def _eval_due(run: Run, evaluator: Any) -> bool:
    every = run.cfg.eval.every
    last = run.iteration == run.cfg.train.iterations
    return evaluator is not None and ((every and run.iteration % every == 0) or last)


def _boundary(run: Run) -> bool:
    t = run.cfg.train
    return any(_due(run, e) for e in (t.log_every, t.sample_every, t.checkpoint_every)) or (
        bool(run.cfg.eval.every) and run.iteration % run.cfg.eval.every == 0)


def _log_values(run: Run, info: dict) -> dict[str, float]:
    values = scalars(run.game.last)
    values.update({k: float(v) for k, v in info.items() if isinstance(v, (int, float))})
    if "g/l_k/mean" in values or "g/l_k" in values:
        values["g/loss"] = values.get("g/l_k/mean", values.get("g/l_k"))
    return values


def _prepare(cfg: DictConfig, run_dir: Path, state: dict | None) -> Run:
    """The run, resumed from ``state`` or from its checkpoint when ``cfg.resume`` says so (bad checkpoints fail
    before anything is built). Temporary files that a killed write left behind are removed first."""
    ckpt = run_dir / "checkpoints" / "last.pt"
    resume = parse_resume(cfg.resume)
    if resume is None and state is None and ckpt.exists():
        raise ConfigError(f"{run_dir} already holds a run ({ckpt}); continue it with resume=true or choose another "
                          "hydra.run.dir — nothing was overwritten")
    for folder in (run_dir, run_dir / "checkpoints") if distributed.is_main() else ():
        for stale in remove_stale_temporaries(folder):
            log.info("removed %s, left by an interrupted write", stale)
    sd = state
    if sd is None and resume is not None:
        sd = load_checkpoint(run_dir if resume == "true" else Path(resume))
    run = Run(cfg, run_dir)
    if sd is not None:
        run.load_state_dict(sd)
        log.info("resumed from %s at iteration %d", sd["path"], run.iteration)
    return run


class Loop:
    """One run's loop: step; at each boundary check health, then log, sample, measure, checkpoint; record status."""

    def __init__(self, run: Run, run_dir: Path):
        t = run.cfg.train
        self.run, self.run_dir, self.t = run, run_dir, t
        self.ckpt = run_dir / "checkpoints" / "last.pt"
        self.ckpt_iteration: int | None = run.iteration if self.ckpt.exists() else None
        self.main = distributed.is_main()  # data-parallel: rank 0 alone writes
        self.evaluator = build_evaluator(run)
        self.logger = RunLogger(run_dir, t.iterations, run.iteration, str(t.progress), t.log_every, enabled=self.main)
        self.real_points = run.data.x if run.data.kind == "points" else None
        self.last: dict[str, float] = {}
        self.initial = guard.snapshot(run) if t.on_nan == "rollback" and self.ckpt_iteration is None else None
        self.saturated = 0  # consecutive checks at which the game looked collapsed

    def status(self, state: str, reason: str | None = None) -> None:
        if not self.main:
            return
        write_status(self.run_dir, state, iteration=self.run.iteration, iterations=self.t.iterations, reason=reason,
                     checkpoint_iteration=self.ckpt_iteration)

    def train(self) -> dict:
        run, t = self.run, self.t
        with guard.SignalGuard() as signals:  # before the status: a signal seen after "running" is always handled
            self.status("running")
            try:
                while run.iteration < t.iterations:
                    info = _step(run)
                    faults.inject_nan(run.G, run.iteration)
                    faults.wait_for_signal(run.iteration, signals)
                    signals.signum = distributed.first_signal(signals.signum, run.device)  # all ranks stop together
                    if signals.signum is not None:
                        self.interrupt(signals)
                    if _boundary(run) and self.check_health():
                        self.boundary(info)
            except (KeyboardInterrupt, guard.Interrupted):
                raise
            except guard.Diverged:
                raise
            except Exception as err:
                self.fail(err)
                raise
        return self.finish()

    def boundary(self, info: dict) -> None:
        run, t, it = self.run, self.t, self.run.iteration
        values = _log_values(run, info) if _due(run, t.log_every) else None
        self.last = values or self.last
        self.logger.step(it, values)
        if _due(run, t.sample_every) and self.main:
            save_samples(run.samples("raw", run.fixed_z), self.run_dir / "samples" / f"iter_{it:07d}.png",
                         self.logger.tb, it, self.real_points)
        if _eval_due(run, self.evaluator):
            record_metrics(run, self.evaluator, self.logger if self.main else None)
        if _due(run, t.checkpoint_every):
            self.checkpoint()

    def checkpoint(self) -> None:
        """Checkpoint, metrics.json and status; only ever called on a healthy state."""
        _update_cost(self.run)
        if self.main:
            try:
                save_checkpoint(self.ckpt, self.run.state_dict())
            except WriteError as err:
                kept = (f"the previous checkpoint at iteration {self.ckpt_iteration} is intact"
                        if self.ckpt_iteration is not None else "no checkpoint had been written before")
                raise WriteError(f"{err}; {kept}") from None
            write_metrics(self.run, self.last, self.evaluator)
        distributed.barrier()  # the other ranks read this checkpoint in a rollback
        self.ckpt_iteration = self.run.iteration
        self.status("running")

    def check_health(self) -> bool:
        """True if the game is healthy (on every rank). Otherwise (non-finite, blown up or collapsed: see
        :mod:`gan_bench.guard`) stop with status diverged or roll back, and return False."""
        it, t, device = self.run.iteration, self.t, self.run.device
        h = guard.health(self.run)
        ok = distributed.all_true(h.finite and not h.blown_up(t.max_abs_loss), device)
        saturated = distributed.all_true(h.saturated(t.collapse_g_loss), device)
        self.saturated = self.saturated + 1 if saturated else 0
        collapsed = 0 < t.collapse_checks <= self.saturated
        if ok and not collapsed:
            return True
        where = (f"the last good checkpoint is at iteration {self.ckpt_iteration}" if self.ckpt_iteration is not None
                 else "no checkpoint had been written")
        every = math.gcd(t.log_every, t.checkpoint_every)
        if not h.finite:
            reason = f"non-finite loss, gradient or parameter detected at iteration {it} (checked every {every} " \
                     f"iterations); {where}"
        elif not ok:
            reason = (f"a loss blew up by iteration {it}: a discriminator's game reached |loss| = {h.peak_loss:.3g} > "
                      f"train.max_abs_loss={t.max_abs_loss:g} (finite, but far beyond any value of a working game); "
                      f"{where}")
        else:
            reason = (f"the game collapsed by iteration {it}: every discriminator's loss is exactly 0 while G's loss "
                      f"is {h.g_loss:.3g} > train.collapse_g_loss={t.collapse_g_loss:g}, at {self.saturated} "
                      f"consecutive checks (every {every} iterations): the discriminators win outright and G learns "
                      f"nothing; {where}")
        self.saturated = 0
        if t.on_nan == "rollback" and len(self.run.rollbacks) < t.max_rollbacks:
            self.rollback(reason)
            return False
        if t.on_nan == "rollback":
            reason += f"; train.max_rollbacks={t.max_rollbacks} rollbacks used"
        self.status("diverged", reason)
        self.logger.close()
        raise guard.Diverged(f"diverged: {reason}")

    def rollback(self, reason: str) -> None:
        """Reload the last good state, continue on a fresh (recorded) random stream, scale the learning rates."""
        run, detected = self.run, self.run.iteration
        earlier = list(run.rollbacks)
        guard.restore(run, load_checkpoint(self.ckpt) if self.ckpt_iteration is not None else self.initial)
        run.rollbacks = earlier  # the restored state predates the rollbacks: keep their record
        seed = guard.fresh_stream(run)
        guard.scale_learning_rates(run, self.t.rollback_lr_factor)
        run.rollbacks.append({"detected_at": detected, "resumed_from": run.iteration, "seed": seed,
                              "lr_factor": self.t.rollback_lr_factor})
        self.logger.restart(run.iteration)
        log.warning("%s; rolled back to iteration %d with seed %d (rollback %d of at most %d)", reason,
                    run.iteration, seed, len(run.rollbacks), self.t.max_rollbacks)
        self.status("running", f"rolled back after: {reason}")

    def interrupt(self, signals: guard.SignalGuard) -> None:
        """A signal: checkpoint at this iteration (if the state is healthy), record it, pass the signal on to the
        handler that was there before (a launcher's requeue), tell how to resume."""
        signum = signals.signum
        name = guard.SIGNAL_NAMES.get(signum, f"signal {signum}")
        if distributed.all_true(guard.healthy(self.run, self.t.max_abs_loss), self.run.device):
            self.checkpoint()
        reason = f"{name} at iteration {self.run.iteration}"
        self.status("interrupted", reason)
        self.logger.close()
        hint = (f"checkpoint at iteration {self.ckpt_iteration}; continue with: gan-bench train resume={self.run_dir}"
                if self.ckpt_iteration is not None else "no checkpoint had been written yet")
        signals.pass_on(signum)
        raise guard.Interrupted(signum, f"interrupted by {reason}; {hint}")

    def fail(self, err: BaseException) -> None:
        if not self.main:
            return
        try:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            self.status("failed", f"{type(err).__name__}: {first}")
        except WriteError:
            pass  # the disk is full: the status cannot be written either
        self.logger.close()

    def finish(self) -> dict:
        run = self.run
        for k, v in run.cost.items():
            if isinstance(v, (int, float)):
                self.logger.tb.add_scalar(f"cost/{k}", v, run.iteration)
        metrics = json.loads((self.run_dir / "metrics.json").read_text()) if self.main else None
        if self.main:
            log_run_hparams(self.logger.tb, self.run_dir, metrics, status="finished", step=run.iteration)
        self.logger.close()
        self.status("finished")
        return distributed.broadcast(metrics)


def train(cfg: DictConfig, run_dir: Path, state: dict | None = None) -> dict:
    """Train in ``run_dir`` (resuming from the checkpoint ``state`` when given) and return metrics.json's content.
    The process holds the folder's lock meanwhile (:mod:`gan_bench.runlock`; rank 0 under torchrun). A signal raises
    :class:`gan_bench.guard.Interrupted` after the checkpoint; a divergence that could not be rolled back raises
    :class:`gan_bench.guard.Diverged`; other failures are recorded in status.json and re-raised."""
    run_dir = Path(run_dir)
    with runlock.hold(run_dir, create=True) if distributed.is_main() else contextlib.nullcontext():
        run = _prepare(cfg, run_dir, state)
        try:
            loop = Loop(run, run_dir)
        except Exception as err:
            if distributed.is_main():
                write_status(run_dir, "failed", iteration=run.iteration, iterations=cfg.train.iterations,
                             reason=f"{type(err).__name__}: {err}")
            raise
        return loop.train()
