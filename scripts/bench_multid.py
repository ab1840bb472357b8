"""Benchmark: gan-bench's K-discriminator ensemble against a per-discriminator Python loop (ms per iteration).

One iteration = one D step + one G step (alternating Adam), batch 64, non-saturating loss, on ``dataset=digits``:

* ``--model dcgan_small`` (default): gan-bench's ``model=dcgan_small`` nets (32 channels) at 32x32x3
  (``dataset.resolution=32``, ``dataset.channels=3``: the shape of CIFAR-10);
* ``--model dcgan``: the standard DCGAN (64 channels) at 32x32x3;
* ``--model mlp_mnist``: the multi-discriminator paper's MNIST MLPs (``model=mlp_mnist``, each D behind its fixed
  ``discriminators/projection=linear_wn``, dropout 0.3) at 28x28x1.

Methods, for every K of ``--ks`` and aggregation of ``--aggs``:

* ``loop``: :class:`LoopReference`, the multi-discriminator step as written in the hypervolume-GAN paper's code
  (Albuquerque et al. 2019, "hGAN"): K separate discriminator modules, each with its own ``torch.optim.Adam``, one
  D step per discriminator in a Python loop; then the generator step on the K losses ``l_k``: the aggregation's
  scalar loss (AVG, GMAN, HV ``-sum_k log(eta - l_k)``) with one backward, or for MGD one backward per
  discriminator (``retain_graph``) for the K generator gradients, their min-norm point (gan-bench's solver) as the
  update. No ``.item()``; G's backward does not compute the Ds' weight gradients.
* ``<layout>`` for each of ``--layouts``: gan-bench's own step, ``Run(cfg).opt.step()`` (as training runs it
  between two log lines: ``game.record`` off, no logging-only statistics), with ``discriminators.layout=<layout>``
  (the K discriminators are one ``DiscriminatorEnsemble``: stacked parameters, one optimizer over them). ``auto`` is
  what training uses: a loop over the members' parameter slices on the CPU (channels-last image batches; MGD's K
  generator gradients by K backward passes), one ``vmap`` call on CUDA (see :mod:`gan_bench.models.ensemble`);
  ``vmap`` forces the vectorised call (and MGD's one vmapped backward pass).

Before timing, for every (K, aggregation), the script checks that the reference and gan-bench (layout auto) compute
the same thing: the ensemble is built from copies of the reference's K modules, both generators start from the same
weights and draw the same seeded batches; after one iteration the K discriminator losses, the K generator losses and
the generator's update direction must agree to ``--check-tol`` (losses) and ``--grad-tol`` (relative L2 error of the
direction); skipped with random layers (dropout draws differ).

Timing: for each K, every (threads, method) pair first runs ``--warmup`` untimed iterations, then ``--repeats``
rounds in which each pair runs one timed block of ``--iters`` iterations in turn (``torch.cuda.synchronize``
around every block on CUDA), so that a change of machine load hits all methods alike. A time is the median block's
ms/iteration; a ratio ``loop / <layout>`` is the median over rounds of the ratio of the two blocks of that round.
``--min-seconds`` adds rounds at a K until they took that long (at K = 1 a round is short and the ratio close to 1:
many rounds). The CPU's target: ``loop / auto >= 1`` at every K, aggregation and thread count.

    PYTHONPATH=. python3 scripts/bench_multid.py --device cuda --json bench_multid.json
    PYTHONPATH=. nice -n 5 python3 scripts/bench_multid.py --device cpu --threads 1,2 --ks 1,8,24 --aggs hv,mgd \\
        --iters 1 --warmup 1 --repeats 7 --min-seconds 120
    PYTHONPATH=. python3 scripts/bench_multid.py --device cpu --threads 1 --ks 1,4 --iters 3 --warmup 1 --repeats 3

(with several threads on a shared CPU, one descheduled thread stalls the others: interleaving keeps the ratios
meaningful, the absolute times less so.)

Extra Hydra overrides may follow the options (e.g. ``model.discriminator.width=16``); the loop reference reads the
same config (models, learning rates, betas, aggregation settings) and rejects settings it does not implement.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

# isort: off
import gan_bench  # noqa: F401  (OMP_WAIT_POLICY=PASSIVE, as in training: set before torch loads OpenMP)
# isort: on
import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from gan_bench.aggregation import AGGREGATIONS, MAX_EXACT_K, MultipleGradientDescent, resolve_solver
from gan_bench.build import instantiate
from gan_bench.game import Sample
from gan_bench.launch import compose_config as compose
from gan_bench.metrics.inception import tf32
from gan_bench.models import build_discriminator
from gan_bench.models.ensemble import LAYOUTS, DiscriminatorEnsemble, resolve_layout
from gan_bench.run import Run

AGGS = ("avg", "gman", "hv", "mgd")
REF = "loop"
MODELS = {  # --model -> (overrides, description)
    "dcgan_small": (["model=dcgan_small", "dataset.resolution=32", "dataset.channels=3"], "DCGAN-small 32x32x3"),
    "dcgan": (["model=dcgan", "dataset.resolution=32", "dataset.channels=3"], "DCGAN 32x32x3"),
    "mlp_mnist": (["model=mlp_mnist", "discriminators/projection=linear_wn", "dataset.resolution=28",
                   "dataset.channels=1"], "MNIST MLPs (linear_wn projection, dropout 0.3) 28x28x1"),
}
CPU_TARGET = 1.0  # loop / auto on the CPU: never slower than the per-D loop, at every K, aggregation, thread count
CUDA_TARGETS = {"loop_over_auto": 4.0, "scaling": 1.5, "mgd_over_hv": 2.0}  # K = 24 (and K = 1 for the scaling)
SCALE_AGGS = ("avg", "gman", "hv")


# -- configuration ------------------------------------------------------------------------------------------
def mgd_solver(k: int, requested: str) -> str:
    """:func:`gan_bench.aggregation.resolve_solver`, with the exact solver's limit as a command-line error."""
    if requested == "exact" and k > MAX_EXACT_K:
        raise ValueError(f"--mgd-solver exact supports K <= {MAX_EXACT_K} discriminators, got K = {k}; "
                         "use --mgd-solver auto, interior_point or frank_wolfe")
    return resolve_solver(requested, k)


def bench_config(k: int, agg: str, args: argparse.Namespace, layout: str = "auto") -> DictConfig:
    overrides = [*MODELS[args.model][0], f"discriminators.count={k}", f"discriminators.layout={layout}",
                 f"aggregation={agg}", "dataset=digits", f"train.batch_size={args.batch_size}",
                 "train.measure_flops=false", f"train.device={args.device}", "train.progress=off",
                 f"train.seed={args.seed}"]
    if agg == "mgd":
        overrides.append(f"aggregation.solver={mgd_solver(k, args.mgd_solver)}")
    return compose(overrides + list(args.overrides))


def check_reference_config(cfg: DictConfig) -> None:
    """The loop reference implements plain alternating Adam on the non-saturating loss and nothing else."""
    from gan_bench.config import component_groups, plain
    from gan_bench.run import player_settings
    from gan_bench.stabilizers import build_stabilizers

    tree = plain(cfg)

    def option(where: str) -> str | None:
        return component_groups()[where].name_of(tree_select(tree, where)["_target_"])

    g, d = player_settings(cfg.optimizer, "g"), player_settings(cfg.optimizer, "d")
    unsupported = {
        "loss": (option("loss"), "ns"), "loss.real_label": (cfg.loss.get("real_label", 1.0), 1.0),
        "optimizer/base": (option("optimizer.base"), "adam"),
        "optimizer/rule": (option("optimizer.rule"), "alternating"),
        "train.n_dis": (cfg.train.n_dis, 1), "discriminators.spectral_norm": (cfg.discriminators.spectral_norm, False),
        "stabilizers": (",".join(build_stabilizers(cfg.stabilizers).named) or "none", "none"),  # the active ones
        "optimizer.lookahead.k": (cfg.optimizer.lookahead.k, 0),
        "optimizer.g.weight_decay": (g.get("weight_decay", 0.0), 0.0),
        "optimizer.d.weight_decay": (d.get("weight_decay", 0.0), 0.0),
    }
    bad = [f"{key}={got} (needs {want})" for key, (got, want) in unsupported.items() if got != want]
    if bad:
        raise ValueError("the per-discriminator loop reference only implements alternating Adam on the "
                         "non-saturating loss without regularisers; unsupported override(s): " + ", ".join(bad))


def tree_select(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


# -- the per-discriminator loop of the paper's code ----------------------------------------------------------
class LoopReference:
    """hGAN's multi-discriminator step (Albuquerque et al. 2019): K modules, K Adams, a Python loop.

    D step: one batch ``(x, z)`` for all; for each k, ``L_D^k = BCE(D_k(x), 1) + BCE(D_k(G(z)), 0)``, its own
    backward and Adam step. G step: a fresh ``z``; ``l_k = BCE(D_k(G(z)), 1)`` (non-saturating); a scalar
    aggregation's loss (AVG, GMAN, HV, from gan-bench's aggregation object) and one backward, or MGD: one backward of
    each ``l_k`` (the paper code's per-D gradients), the min-norm point of the K rows as G's update direction."""

    def __init__(self, G: nn.Module, discriminators: Sequence[nn.Module], sample: Callable[[], Sample],
                 cfg: DictConfig):
        from gan_bench.run import player_settings

        self.G, self.discriminators, self.sample = G, list(discriminators), sample
        self.agg = instantiate(cfg.aggregation, "aggregation", group=AGGREGATIONS, k=len(self.discriminators))
        if list(self.agg.parameters()):
            raise ValueError(f"aggregation {type(self.agg).__name__} has its own parameters: the loop reference "
                             "does not implement it")
        d, g = player_settings(cfg.optimizer, "d"), player_settings(cfg.optimizer, "g")
        self.d_opts = [torch.optim.Adam(m.parameters(), lr=d["lr"], betas=tuple(d["betas"]))
                       for m in self.discriminators]
        self.g_params = list(G.parameters())
        self.g_opt = torch.optim.Adam(self.g_params, lr=g["lr"], betas=tuple(g["betas"]))

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One iteration; returns the detached D losses ``[K]`` and generator losses ``l_k`` ``[K]``."""
        s = self.sample()
        with torch.no_grad():
            fake = self.G(s.z)
        d_losses = []
        for D, opt in zip(self.discriminators, self.d_opts):
            real_logit, fake_logit = D(s.real), D(fake)
            loss = (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                    + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            d_losses.append(loss.detach())
        fake = self.G(self.sample().z)
        g_losses = []
        for D in self.discriminators:
            logit = D(fake)
            g_losses.append(F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit)))
        l_k = torch.stack(g_losses)
        self.g_opt.zero_grad(set_to_none=True)
        if isinstance(self.agg, MultipleGradientDescent):
            self._mgd_grads(g_losses)
        else:
            self.agg.loss(l_k)[0].backward(inputs=self.g_params)
        self.g_opt.step()
        return torch.stack(d_losses), l_k.detach()

    def _mgd_grads(self, g_losses: list[torch.Tensor]) -> None:
        rows = []
        for i, loss in enumerate(g_losses):
            grads = torch.autograd.grad(loss, self.g_params, retain_graph=i < len(g_losses) - 1)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        direction, _ = self.agg.combine(torch.stack(rows))
        for p, g in zip(self.g_params, torch.split(direction, [p.numel() for p in self.g_params])):
            p.grad = g.view_as(p)


def pair_loop_with_run(run: Run) -> LoopReference:
    """A loop reference sharing ``run``'s sampler and initial G; ``run.D`` is rebuilt from copies of its K modules."""
    cfg = run.cfg
    check_reference_config(cfg)
    shape = run.data.shape
    modules = [build_discriminator(cfg, shape).to(run.device) for _ in range(cfg.discriminators.count)]
    ensemble = DiscriminatorEnsemble([copy.deepcopy(m) for m in modules]).to(run.device)
    run.D.load_state_dict(ensemble.state_dict())  # in place: the run's D optimizer keeps its tensors
    return LoopReference(copy.deepcopy(run.G), modules, run.game.sample, cfg)


@dataclass
class Check:
    k: int
    agg: str
    d_loss_max_diff: float
    g_loss_max_diff: float
    g_grad_rel_diff: float
    d_loss_mean: float
    g_loss_mean: float
    passed: bool | None  # None: skipped (random layers)


def has_random_layers(modules: Sequence[nn.Module]) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for d in modules for m in d.modules())


def first_step_check(run: Run, loop: LoopReference, agg: str, seed: int, tol: float, grad_tol: float) -> Check:
    """Run one iteration of each from the same RNG state (in float32); compare the K D losses and the K generator
    losses (to ``tol``) and the generator's update direction (its gradient, or MGD's min-norm point; relative L2
    error, to ``grad_tol``). The direction is a small sum of many terms of either sign at initialisation: the float32
    rounding of the Ds' input gradients (1e-7 relative, NHWC or NCHW, K modules or one ensemble) shows in it at
    1e-4 to 1e-3 (here, K = 8 and 24); a wrong weighting or route gives O(1). The parameters themselves are not
    compared: Adam's first step moves every entry by +-lr, so any entry whose tiny gradient flips sign moves by 2 lr."""
    with tf32(run.device, False):  # compare float32 results, not TF32 rounding
        torch.manual_seed(seed)
        run.opt.step()
        vec_d, vec_g = run.game.last["d/loss"], run.game.last["g/l_k"]
        torch.manual_seed(seed)
        loop_d, loop_g = loop.step()
    dd = (vec_d - loop_d).abs().max().item()
    dg = (vec_g - loop_g).abs().max().item()
    vec_grad, loop_grad = (torch.cat([p.grad.reshape(-1) for p in G.parameters()]) for G in (run.G, loop.G))
    dp = (torch.linalg.vector_norm(vec_grad - loop_grad) / torch.linalg.vector_norm(loop_grad).clamp_min(1e-30)).item()
    passed = None if has_random_layers(loop.discriminators) else max(dd, dg) <= tol and dp <= grad_tol
    return Check(len(loop.discriminators), agg, dd, dg, dp, loop_d.mean().item(), loop_g.mean().item(), passed)


# -- timing --------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    k: int
    agg: str
    method: str  # REF or a layout
    threads: int
    solver: str | None
    ms_per_iter: float  # median over repeats
    repeats_ms: list[float] = field(default_factory=list)


def set_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)


def time_interleaved(steps: dict[tuple[str, str], Callable[[], object]], threads: list[int], device: torch.device,
                     args: argparse.Namespace) -> dict[tuple[int, str, str], list[float]]:
    """ms per iteration of each (threads, aggregation, method) in ``--repeats`` rounds (more while the rounds have
    taken less than ``--min-seconds``); a round times one block of ``--iters`` iterations of every pair in turn, after
    ``--warmup`` untimed iterations of each."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for t in threads:
        set_threads(t)
        for step in steps.values():
            for _ in range(args.warmup):
                step()
    out: dict[tuple[int, str, str], list[float]] = {(t, *key): [] for t in threads for key in steps}
    start, rounds = time.perf_counter(), 0
    while rounds < args.repeats or time.perf_counter() - start < args.min_seconds:
        rounds += 1
        for t in threads:
            set_threads(t)
            for key, step in steps.items():
                sync()
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    step()
                sync()
                out[(t, *key)].append(1000.0 * (time.perf_counter() - t0) / args.iters)
    return out


def build_methods(k: int, args: argparse.Namespace, device: torch.device, run_dir: Path):
    """For every aggregation: the loop reference (paired with a layout-auto run for the first-step check) and a run in
    each layout of ``--layouts``. Returns the steps ``{(agg, method): step}``, the checks and the solvers."""
    steps: dict[tuple[str, str], Callable[[], object]] = {}
    checks, solvers = [], {}
    for agg in args.aggs:
        cfg = bench_config(k, agg, args)
        solvers[agg] = str(cfg.aggregation.solver) if agg == "mgd" else None
        check_run = Run(cfg, run_dir)
        try:
            loop = pair_loop_with_run(check_run)
        except ValueError as err:  # no reference for this aggregation: time gan-bench alone
            print(f"K={k} {agg}: {err}", file=sys.stderr)
            loop = None
        if loop is not None:
            checks.append(first_step_check(check_run, loop, agg, args.seed + 1, args.check_tol, args.grad_tol))
            steps[(agg, REF)] = loop.step
        for layout in args.layouts:
            run = check_run if layout == "auto" else Run(bench_config(k, agg, args, layout), run_dir)
            run.game.record = False  # as in training between two log lines: no logging-only statistics
            steps[(agg, layout)] = run.opt.step
    return steps, checks, solvers


def bench_k(k: int, args: argparse.Namespace, device: torch.device, run_dir: Path) -> tuple[list[Timing], list[Check]]:
    """The sanity checks, then every method at K discriminators, timed in interleaved rounds."""
    steps, checks, solvers = build_methods(k, args, device, run_dir)
    ms = time_interleaved(steps, args.threads, device, args)
    del steps
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return [Timing(k, agg, m, t, solvers[agg], statistics.median(v), v) for (t, agg, m), v in ms.items()], checks


# -- report --------------------------------------------------------------------------------------------------
def paired_ratio(num: Timing | None, den: Timing | None) -> float | None:
    """Median over rounds of num's block time / den's block time of the same round (both ran back to back)."""
    if num is None or den is None:
        return None
    return statistics.median(a / b for a, b in zip(num.repeats_ms, den.repeats_ms))


def main_rows(timings: list[Timing], args: argparse.Namespace, device: torch.device) -> list[dict]:
    """One row per (K, aggregation, threads): the methods' times, loop / <layout> for each layout, the target."""
    by = {(t.k, t.agg, t.method, t.threads): t for t in timings}
    rows = []
    for k in args.ks:
        for agg in args.aggs:
            for th in args.threads:
                ref = by.get((k, agg, REF, th))
                row = {"k": k, "agg": agg, "threads": th, "ms": {}, "ratio": {}}
                for m in [REF, *args.layouts]:
                    if (k, agg, m, th) in by:
                        row["ms"][m] = by[(k, agg, m, th)].ms_per_iter
                for layout in args.layouts:
                    row["ratio"][layout] = paired_ratio(ref, by.get((k, agg, layout, th)))
                auto = row["ratio"].get("auto")
                if device.type == "cpu":
                    row["target"] = CPU_TARGET
                elif agg == "hv" and k == 24:
                    row["target"] = CUDA_TARGETS["loop_over_auto"]
                else:
                    row["target"] = None
                row["met"] = None if auto is None or row["target"] is None else auto >= row["target"]
                rows.append(row)
    return rows


def cuda_rows(timings: list[Timing], args: argparse.Namespace) -> list[dict]:
    """The CUDA targets on the auto layout: K_max / K_min for AVG, GMAN, HV and MGD / HV per K."""
    by = {(t.k, t.agg, t.method, t.threads): t for t in timings}
    out = []
    lo, hi = min(args.ks), max(args.ks)
    for th in args.threads:
        for agg in SCALE_AGGS:
            a, b = by.get((hi, agg, "auto", th)), by.get((lo, agg, "auto", th))
            if hi != lo and a is not None and b is not None:  # different K ran in different rounds: medians
                r = a.ms_per_iter / b.ms_per_iter
                target = CUDA_TARGETS["scaling"] if (lo, hi) == (1, 24) else None
                out.append({"ratio": f"{agg} K={hi} / K={lo}", "threads": th, "value": r, "target": target,
                            "sense": "<="})
        for k in args.ks:
            r = paired_ratio(by.get((k, "mgd", "auto", th)), by.get((k, "hv", "auto", th)))
            if r is not None:
                out.append({"ratio": f"mgd / hv, K={k}", "threads": th, "value": r,
                            "target": CUDA_TARGETS["mgd_over_hv"], "sense": "<="})
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}"


def fmt_ms(t: Timing | None) -> str:
    if t is None:
        return "-"
    v = t.repeats_ms
    q1, _, q3 = statistics.quantiles(v, n=4) if len(v) >= 2 else (v[0], v[0], v[0])
    return f"{t.ms_per_iter:.1f} ±{100 * (q3 - q1) / 2 / t.ms_per_iter:.0f}%"


def print_checks(console, checks: list[Check], args: argparse.Namespace) -> None:
    from rich.table import Table

    table = Table(title=f"first-step sanity check, gan-bench (layout auto) vs loop (losses to {args.check_tol:g}, "
                        f"G's direction to {args.grad_tol:g})")
    for col in ("K", "agg", "max |dD loss|", "max |dl_k|", "|dG grad| / |G grad|", "mean D loss", "mean l_k", "ok"):
        table.add_column(col, justify="right")
    for c in checks:
        ok = "skipped (dropout draws differ)" if c.passed is None else "yes" if c.passed else "[red]NO[/red]"
        table.add_row(str(c.k), c.agg, f"{c.d_loss_max_diff:.2e}", f"{c.g_loss_max_diff:.2e}",
                      f"{c.g_grad_rel_diff:.2e}", f"{c.d_loss_mean:.4f}", f"{c.g_loss_mean:.4f}", ok)
    console.print(table)


def print_report(timings: list[Timing], checks: list[Check], rows: list[dict], args: argparse.Namespace,
                 device: torch.device) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    rounds = f"{args.repeats}+ rounds (>= {args.min_seconds:g} s a K)" if args.min_seconds else f"{args.repeats} rounds"
    console.print(f"device: {device_name(device)} | torch {torch.__version__} | {MODELS[args.model][1]} | batch "
                  f"{args.batch_size} | warmup {args.warmup}, {rounds} x {args.iters} timed iterations")
    console.print(f"layout auto = {resolve_layout('auto', device)} on {device.type}"
                  + (f" | extra overrides: {' '.join(args.overrides)}" if args.overrides else ""))
    print_checks(console, checks, args)
    by = {(t.k, t.agg, t.method, t.threads): t for t in timings}
    target = f"loop / auto >= {CPU_TARGET:g} on the CPU" if device.type == "cpu" else \
        f"loop / auto >= {CUDA_TARGETS['loop_over_auto']:g} for hv at K = 24 on CUDA"
    table = Table(title=f"ms / iteration (median over rounds; ± half the interquartile range); ratios: median over "
                        f"rounds of the paired blocks; target {target}")
    for col in ("K", "agg", "threads", "rounds", "loop (ref)", *args.layouts, *[f"loop / {m}" for m in args.layouts],
                "met"):
        table.add_column(col, justify="right")
    for r in rows:
        th = r["threads"] or torch.get_num_threads()
        cells = [fmt_ms(by.get((r["k"], r["agg"], m, r["threads"]))) for m in [REF, *args.layouts]]
        ratios = [f"{v:.3f}" if v is not None else "-" for v in r["ratio"].values()]
        met = "-" if r["met"] is None else "yes" if r["met"] else "[red]no[/red]"
        n = len(by[(r["k"], r["agg"], args.layouts[0], r["threads"])].repeats_ms)
        table.add_row(str(r["k"]), r["agg"], str(th), str(n), *cells, *ratios, met)
    console.print(table)
    extra = cuda_rows(timings, args)
    if extra:
        t2 = Table(title="ratios of the auto layout" + (" (targets stated for CUDA)" if device.type == "cpu" else ""))
        for col in ("ratio", "threads", "value", "target"):
            t2.add_column(col, justify="right")
        for r in extra:
            target = f"{r['sense']} {r['target']:g}" if r["target"] is not None else "-"
            t2.add_row(r["ratio"], str(r["threads"] or torch.get_num_threads()), f"{r['value']:.2f}x", target)
        console.print(t2)


# -- command line --------------------------------------------------------------------------------------------
def _int_list(parser: argparse.ArgumentParser, name: str, text: str, low: int) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--{name} must be comma-separated integers, got {text!r}")
    if not values or min(values) < low:
        parser.error(f"--{name} needs integers >= {low}, got {text!r}")
    return values


def _names(parser: argparse.ArgumentParser, name: str, text: str, allowed: Sequence[str]) -> list[str]:
    values = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [v for v in values if v not in allowed]
    if not values or unknown:
        parser.error(f"--{name}: choose from {', '.join(allowed)}, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. model.discriminator.width=16")
    parser.add_argument("--model", default="dcgan_small", choices=list(MODELS), help="the nets (default dcgan_small)")
    parser.add_argument("--ks", default="1,8,24", help="numbers of discriminators, comma-separated (default 1,8,24)")
    parser.add_argument("--aggs", default=",".join(AGGS), help=f"aggregations (default {','.join(AGGS)})")
    parser.add_argument("--layouts", default=None, help="gan-bench ensemble layouts to time, from "
                        f"{', '.join(LAYOUTS)} (default: auto,vmap on the CPU, auto on CUDA)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", default="0", help="torch CPU thread counts, comma-separated, each timed in the "
                        "same rounds (0 = torch's default; default 0)")
    parser.add_argument("--iters", type=int, default=20, help="iterations per timed block (default 20)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations of each method (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    parser.add_argument("--min-seconds", type=float, default=0.0, help="at each K, more rounds until the rounds took "
                        "this long (small K: many more rounds for the same time; default 0)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mgd-solver", default="auto", choices=("auto", "exact", "interior_point", "frank_wolfe"),
                        help=f"auto: exact for K <= {MAX_EXACT_K}, interior_point above (default)")
    parser.add_argument("--check-tol", type=float, default=1e-4, help="max |difference| of the first step's losses")
    parser.add_argument("--grad-tol", type=float, default=1e-2, help="max relative L2 difference of the first step's "
                        "generator update direction (default 1e-2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.ks = _int_list(parser, "ks", args.ks, 1)
    args.threads = _int_list(parser, "threads", args.threads, 0)
    args.aggs = _names(parser, "aggs", args.aggs, AGGS)
    default_layouts = "auto,vmap" if args.device == "cpu" else "auto"
    args.layouts = _names(parser, "layouts", args.layouts or default_layouts, LAYOUTS)
    for name in ("iters", "repeats", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available; use --device cpu")
    if "mgd" in args.aggs:
        for k in args.ks:
            try:
                mgd_solver(k, args.mgd_solver)
            except ValueError as err:
                parser.error(str(err))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    try:
        check_reference_config(bench_config(args.ks[0], args.aggs[0], args))
    except ValueError as err:
        print(f"bench_multid.py: error: {err}", file=sys.stderr)
        return 2
    timings: list[Timing] = []
    checks: list[Check] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.ks:
            t, c = bench_k(k, args, device, Path(tmp))
            timings += t
            checks += c
    rows = main_rows(timings, args, device)
    print_report(timings, checks, rows, args, device)
    if args.json is not None:
        out = {
            "device": args.device, "device_name": device_name(device), "torch": torch.__version__,
            "python": platform.python_version(), "auto_layout": resolve_layout("auto", device),
            "settings": {"model": args.model, "ks": args.ks, "aggs": args.aggs, "layouts": args.layouts,
                         "threads": args.threads, "batch_size": args.batch_size, "iters": args.iters,
                         "warmup": args.warmup, "repeats": args.repeats, "min_seconds": args.min_seconds,
                         "mgd_solver": args.mgd_solver,
                         "seed": args.seed, "overrides": list(args.overrides), "dataset": "digits"},
            "timings": [t.__dict__ for t in timings],
            "checks": [c.__dict__ for c in checks],
            "rows": rows,
            "ratios": cuda_rows(timings, args),
        }
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    if any(c.passed is False for c in checks):
        print(f"sanity check FAILED: the first step's losses differ by more than {args.check_tol:g} or G's "
              f"direction by more than {args.grad_tol:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
