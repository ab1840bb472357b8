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
from gan_bench.files import WriteError, atomic_write_json, cache_dir, remove_stale_temporaries
from gan_bench.loggers import build_loggers
from gan_bench.run import Run
from gan_bench.runlog import RunLogger, flat_config, run_label, save_samples, scalars, swept_keys
from gan_bench.status import resume_command, write_status

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


def build_evaluator(run: Run, say: Any = print):
    cfg = run.cfg
    if not cfg.eval.metrics:
        return None
    from gan_bench.metrics import Evaluator

    centres = mixture_centres(cfg.dataset.name, cfg.dataset.scale) if run.data.kind == "points" else None
    cache = cache_dir(cfg.eval.cache_dir)
    key = run.data.key if cfg.eval.split == "train" else run.data.key.replace("-train-", "-test-")
    classifier = cfg.eval.classifier
    if classifier is None and "fid_classifier" in cfg.eval.metrics and distributed.is_main():
        from gan_bench.metrics.classifier_files import find_classifier

        classifier = str(find_classifier(cfg.dataset, say))
    classifier = distributed.broadcast(classifier)
    return Evaluator(list(cfg.eval.metrics), real=_real_reference(run), dataset_key=key, n_samples=cfg.eval.n_samples,
                     batch_size=cfg.eval.batch_size, device=run.device, cache_dir=cache, split=str(cfg.eval.split),
                     inception_weights=cfg.eval.inception_weights, classifier_path=classifier,
                     classifier_layer=str(cfg.eval.classifier_layer), mode_centres=centres,
                     mode_std=cfg.dataset.get("std"), modes_min_count=cfg.eval.modes_min_count,
                     part=distributed.my_slice, gather=distributed.gather_rows)


def update_best(best: dict[str, dict], values: dict[str, Any], *, iteration: int, wall_clock_s: float,
                generator: str) -> set[str]:
    """Record in ``best`` (``key -> {value, iteration, wall_clock_s, generator}``) each finite value of ``values``
    that beats the best so far of its key, in the direction its metric declares in the registry (lower for FID,
    higher for IS or a plug-in declared :data:`~gan_bench.metrics.registry.HIGHER`); keys declared not optimised
    (a std) or unknown are not tracked. Returns the keys that improved."""
    from gan_bench.metrics.registry import sign

    improved = set()
    for key, v in values.items():
        better = sign(key)
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if better and math.isfinite(x) and (key not in best or better * (x - float(best[key]["value"])) > 0):
            best[key] = {"value": v, "iteration": iteration, "wall_clock_s": wall_clock_s, "generator": generator}
            improved.add(key)
    return improved


def record_metrics(run: Run, evaluator: Any, logger: RunLogger | None, save_best: bool = True) -> list[dict]:
    """The configured metrics for the raw G and each averaged G; the best value of every key with a direction
    tracked with its iteration and time (:func:`update_best`); ``checkpoints/best.pt`` follows the best FID."""
    results, improved = [], False
    scale = reference_values(run, evaluator, logger)
    for which in map(str, run.cfg.eval.generators):
        if which != "raw" and which not in run.averages:
            continue
        if which == "ema" and not ema_warmed_up(run):
            if logger is not None:
                logger.say(f"[gan-bench] eval it {run.iteration}  G ema skipped: the average still holds "
                           f"{ema_initial_share(run):.0%} of the initial G (evaluated from iteration "
                           f"{ema_ready_at(run)}, when that share is below {EMA_READY:.0%})")
            continue
        gen = torch.Generator(device=run.device).manual_seed(run.cfg.train.seed + 20_000)

        def sample_fn(n: int, _w=which, _g=gen) -> torch.Tensor:  # data-parallel: this rank's part of the n samples
            z = torch.randn(n, run.cfg.model.z_dim, device=run.device, generator=_g)[distributed.my_slice(n)]
            return run.samples(_w, z)

        started = time.perf_counter()
        values = _evaluate(evaluator, sample_fn, logger, f"eval G {which}")
        took = time.perf_counter() - started
        entry = {"iteration": run.iteration, "wall_clock_s": run.elapsed, "generator": which, **values,
                 "protocol": evaluator.protocol}  # how each value was measured, with the value (report compares)
        results.append(entry)
        run.history.append(entry)
        if logger is not None:
            if which != "raw" and not any(e["generator"] == which for e in run.history[:-1]):
                logger.text(f"eval_{which}/about", AVERAGED[which].format(a=run.cfg.optimizer.averaging), run.iteration)
            logger.scalars({f"eval_{which}/{k}": v for k, v in values.items() if v is not None}, run.iteration)
            shown = "  ".join(f"{k}={v:.4g}{_scale_text(scale.get(k))}" for k, v in values.items()
                              if isinstance(v, (int, float)))
            logger.say(f"[gan-bench] eval it {run.iteration}  G {which}  {shown}  ({took:.1f} s)")
        better = update_best(run.best, values, iteration=run.iteration, wall_clock_s=run.elapsed, generator=which)
        improved |= ("fid" if "fid" in values else "fid_classifier") in better
    if save_best and improved and distributed.is_main():  # once, after every generator's entry is in the history
        save_checkpoint(run.run_dir / "checkpoints" / "best.pt", run.state_dict())
    if logger is not None:
        logger.text("eval/protocol", str(evaluator.protocol), run.iteration)
    return results


#: what ``eval_ema/...`` and ``eval_uniform/...`` measure, said once beside them (TensorBoard's text tab)
AVERAGED = {"ema": "the averaged generator: an exponential moving average of G's parameters (decay {a.ema}, from "
                   "iteration {a.start}), evaluated once the initial G's share of it is below 5 %",
            "uniform": "the averaged generator: the uniform average of G's parameters since iteration {a.start}"}


#: the EMA generator is evaluated once the initial G's share of the average, ema ** (iterations averaged), is
#: below this: before that it is mostly the untrained G (0.999: from 3,000 iterations after averaging starts)
EMA_READY = 0.05


def ema_initial_share(run: Run) -> float:
    a = run.cfg.optimizer.averaging
    return float(a.ema) ** max(run.iteration - int(a.start), 0)


def ema_ready_at(run: Run) -> int:
    a = run.cfg.optimizer.averaging
    return int(a.start) + math.ceil(math.log(EMA_READY) / math.log(float(a.ema)))


def ema_warmed_up(run: Run) -> bool:
    return ema_initial_share(run) < EMA_READY


def _evaluate(evaluator: Any, sample_fn: Any, logger: RunLogger | None, what: str) -> dict:
    """The evaluator on ``sample_fn``, with a bar of its own on a terminal (samples drawn and measured)."""
    evaluator.on_batch = logger.phase(what, evaluator.settings.n_samples) if logger is not None else None
    try:
        return evaluator(sample_fn)
    finally:
        evaluator.on_batch = None


def reference_values(run: Run, evaluator: Any, logger: RunLogger | None) -> dict[str, dict[str, float]]:
    """``eval.reference_values``: each image metric's value for real training images and for uniform noise, at this
    protocol (the same sample count, features and reference) — the scale a run's values sit on. Measured once per
    protocol and kept in the statistics cache (``eval.cache_dir``)."""
    if not run.cfg.eval.get("reference_values") or run.data.kind == "points":
        return {}
    if getattr(evaluator, "reference_values", None) is not None:
        return evaluator.reference_values
    import hashlib

    digest = hashlib.sha256(json.dumps(evaluator.protocol, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = cache_dir(run.cfg.eval.cache_dir) / f"reference_values-{digest}.json"
    try:
        out = json.loads(path.read_text())
    except (OSError, ValueError):
        real = _real_reference(run)
        gen = torch.Generator().manual_seed(0)  # its own stream: training's is left as it was

        def real_fn(n: int) -> torch.Tensor:
            idx = torch.randint(len(real), (n,), generator=gen)[distributed.my_slice(n)]
            x = real[idx].to(run.device)
            return x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x

        def noise_fn(n: int) -> torch.Tensor:
            shape = (len(range(n)[distributed.my_slice(n)]), *real.shape[1:])
            return (torch.rand(shape, generator=gen) * 2 - 1).to(run.device)

        real_values = _evaluate(evaluator, real_fn, logger, "scale: real images")
        noise_values = _evaluate(evaluator, noise_fn, logger, "scale: noise")
        out = {k: {"real": real_values[k], "noise": noise_values[k]} for k in real_values
               if isinstance(real_values[k], (int, float)) and isinstance(noise_values.get(k), (int, float))}
        if distributed.is_main():
            atomic_write_json(path, out)
    evaluator.reference_values = out
    return out


def _scale_text(scale: dict | None) -> str:
    return f" (real data {scale['real']:.4g}, noise {scale['noise']:.4g})" if scale else ""


# -- results ------------------------------------------------------------------------------------------------------
def _update_cost(run: Run) -> None:
    """The cost figures derived from the run so far (the paper's Table 2 columns)."""
    run.cost["peak_memory_mb"] = peak_memory_mb(run.device)
    run.cost["seconds_per_iteration"] = run.elapsed / max(run.iteration, 1)
    run.cost["grad_evals_per_iteration"] = run.grad_evals / max(run.iteration, 1)
    if "fid" in run.best:
        run.cost["wall_clock_to_best_fid_s"] = run.best["fid"]["wall_clock_s"]


def write_metrics(run: Run, final: dict[str, float], evaluator: Any) -> dict:
    """metrics.json; ``metric_keys`` records each result key's direction and label (the registry's, plug-ins
    included), so that ``gan-bench report`` reads them without importing any plug-in."""
    keys = {}
    if evaluator is not None:
        from gan_bench.metrics.registry import metric_keys

        keys = metric_keys(getattr(evaluator, "metrics", ()))
    it_s = run.iteration / run.elapsed if run.elapsed > 0 else 0.0
    out = {
        "name": run.cfg.name, "iterations": run.iteration, "wall_clock_s": run.elapsed, "iterations_per_s": it_s,
        "grad_evals": run.grad_evals, "final": final, "cost": run.cost, "eval": run.history, "best": run.best,
        "metric_keys": keys,
        "rollbacks": run.rollbacks, "data": {"skipped_files": list(getattr(run.data, "skipped", []))},
        "protocol": getattr(evaluator, "protocol", {}) if evaluator is not None else {},
        "unavailable": getattr(evaluator, "unavailable", {}) if evaluator is not None else {},
        "reference_values": getattr(evaluator, "reference_values", None) or {},
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


def _prepare(cfg: DictConfig, run_dir: Path, state: dict | None, checked: bool = False) -> Run:
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
    run = Run(cfg, run_dir, checked=checked)
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
        loggers = build_loggers(run.cfg.get("logger"), run_dir, run_label(run_dir), run.iteration) if self.main else []
        self.logger = RunLogger(run_dir, t.iterations, run.iteration, str(t.progress), t.log_every, enabled=self.main,
                                loggers=loggers)
        self.logger.config(flat_config(plain(run.cfg)), swept_keys(run_dir))
        self.evaluator = build_evaluator(run, say=self.logger.say)
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
                    else:
                        self.logger.tick(run.iteration)
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
            png = save_samples(run.samples("raw", run.fixed_z), self.run_dir / "samples" / f"iter_{it:07d}.png",
                               self.real_points, it)
            self.logger.image("samples", png, it)
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
        self.logger.say(f"[gan-bench] diverged: {reason}", console=False)  # the console gets it from the command
        self.logger.finish(self.record(), [], "diverged")
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
        self.logger.say(f"[gan-bench] interrupted by {reason}", console=False)
        self.logger.finish(self.record(), [], "interrupted")
        self.logger.close()
        hint = (f"checkpoint at iteration {self.ckpt_iteration}; continue with: {resume_command(self.run_dir)}"
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
        try:
            self.logger.say(f"[gan-bench] failed: {type(err).__name__}: {first}", console=False)
            self.logger.finish(self.record(), [], "failed")
        finally:
            self.logger.close()

    def record(self) -> dict:
        """metrics.json's content as last written ({} before the first checkpoint)."""
        path = self.run_dir / "metrics.json"
        try:
            return json.loads(path.read_text()) if self.main and path.is_file() else {}
        except ValueError:
            return {}

    def finish(self) -> dict:
        run = self.run
        self.logger.scalars({f"cost/{k}": v for k, v in run.cost.items() if isinstance(v, (int, float))},
                            run.iteration)
        metrics = self.record() if self.main else None
        if self.main:
            grids = sorted((self.run_dir / "samples").glob("*.png"))[-1:]
            self.logger.finish(metrics, [self.run_dir / "metrics.json", *grids], "finished")
            self.logger.say(done_line(metrics, self.run_dir))
        self.logger.close()
        self.status("finished")
        return distributed.broadcast(metrics)


def done_line(metrics: dict, run_dir: Path) -> str:
    """The run's last console line: its length and speed, its best values, where its results are."""
    scale = metrics.get("reference_values") or {}
    best = "  ".join(f"best {k}={v['value']:.4g}{_scale_text(scale.get(k))} (it {v['iteration']}, G {v['generator']})"
                     for k, v in (metrics.get("best") or {}).items() if isinstance(v, dict) and "value" in v)
    return (f"[gan-bench] done: {metrics['iterations']} iterations in {metrics['wall_clock_s']:.1f} s "
            f"({metrics['iterations_per_s']:.1f} it/s){'; ' + best if best else ''}; results in {run_dir} "
            "(metrics.json, samples/, checkpoints/)")


def train(cfg: DictConfig, run_dir: Path, state: dict | None = None, checked: bool = False) -> dict:
    """Train in ``run_dir`` (resuming from the checkpoint ``state`` when given) and return metrics.json's content.
    The process holds the folder's lock meanwhile (:mod:`gan_bench.runlock`; rank 0 under torchrun). A signal raises
    :class:`gan_bench.guard.Interrupted` after the checkpoint; a divergence that could not be rolled back raises
    :class:`gan_bench.guard.Diverged`; other failures are recorded in status.json and re-raised."""
    run_dir = Path(run_dir)
    with runlock.hold(run_dir, create=True) if distributed.is_main() else contextlib.nullcontext():
        run = _prepare(cfg, run_dir, state, checked)
        try:
            loop = Loop(run, run_dir)
        except Exception as err:
            if distributed.is_main():
                write_status(run_dir, "failed", iteration=run.iteration, iterations=cfg.train.iterations,
                             reason=f"{type(err).__name__}: {err}")
            raise
        return loop.train()
