"""Benchmark: K vectorised discriminators against a per-discriminator Python loop (ms per iteration).

One iteration = one D step + one G step (alternating Adam), DCGAN at 32x32x3 (``dataset=digits``,
``dataset.resolution=32``, ``dataset.channels=3``: the shape of CIFAR-10), batch 64, non-saturating loss.

* ``vec-<agg>``: gan-bench's own step, ``Run(cfg).opt.step()``, for each aggregation in ``--aggs``
  (the K discriminators are one ``DiscriminatorEnsemble``: stacked parameters, one optimizer over them),
  with the ensemble's ``layout="auto"``, what training uses: one ``vmap`` call on CUDA, a loop of
  ``functional_call`` over the members' slices on the CPU (see :mod:`gan_bench.models.ensemble`).
* ``vec-hv@<layout>``: the same step with the ensemble forced to another layout, for each extra layout in
  ``--layouts`` (e.g. ``--layouts auto,vmap`` times the CPU's former vmap path in the same interleaved rounds).
* ``loop-hv``: :class:`LoopReference`, the multi-discriminator training step as written in the
  hypervolume-GAN paper's code (Albuquerque et al. 2019, "hGAN"): K separate DCGAN discriminators, each
  with its own ``torch.optim.Adam``, one D step per discriminator in a Python loop, then one generator
  step on the hypervolume loss ``L = -sum_k log(eta - l_k)``, ``eta = delta * max_k l_k`` (detached).

Before timing, at every K, the script checks that both implementations compute the same thing: the
ensemble is built from copies of the loop's K modules, both generators start from the same weights,
both draw their batches from the same seeded sampler, and the first iteration's K discriminator losses
(and the K generator losses of the G step that follows the D update) must agree to ``--check-tol`` (the loop
layout does the per-D loop's arithmetic: on the CPU the differences are 0 or a few ulps).

Timing: ``--warmup`` untimed iterations of each method, then ``--repeats`` rounds in which every method
runs one timed block of ``--iters`` iterations in turn (``torch.cuda.synchronize`` before and after every
block on CUDA); a cell is the median block's ms/iter.

    PYTHONPATH=. python3 scripts/bench_multid.py --device cuda --json bench_multid.json
    PYTHONPATH=. python3 scripts/bench_multid.py --device cpu --threads 1 --ks 1,4 --iters 3 --warmup 1 --repeats 3
    PYTHONPATH=. python3 scripts/bench_multid.py --device cpu --threads 2 --aggs hv,mgd --layouts auto,vmap \
        model=dcgan_small

(on a shared CPU, ``--threads 1`` keeps the timings stable: with several threads, one descheduled thread
stalls the others and single blocks take 5-10x longer.)

Extra Hydra overrides may follow the options (e.g. ``model.discriminator.width=32``); the loop reference reads the
same config (widths, learning rates, betas, HV delta) and rejects settings it does not implement.
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

import torch
import torch.nn as nn
import torch.nn.functional as F
from omegaconf import DictConfig

from gan_bench.aggregation import MAX_EXACT_K, resolve_solver
from gan_bench.game import Sample
from gan_bench.launch import compose_config as compose
from gan_bench.metrics.inception import tf32
from gan_bench.models import build_discriminator
from gan_bench.models.ensemble import LAYOUTS, DiscriminatorEnsemble, resolve_layout
from gan_bench.run import Run

AGGS = ("avg", "gman", "hv", "mgd")
LOOP = "loop-hv"
SCALE_AGGS = ("avg", "gman", "hv")  # vectorised K_max / K_min target applies to these
TARGETS = {"loop_over_vec": 4.0, "scaling": 1.5, "mgd_over_hv": 2.0}  # stated for CUDA, K = 24 and K = 1
CPU_LOOP_OVER_VEC = 1.0  # on the CPU: never slower than the per-D loop, at every K and thread count


def vec_methods(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(column, aggregation, layout) of the timed gan-bench steps: every aggregation with the auto layout, and HV
    with each other layout of ``--layouts``."""
    out = [(f"vec-{agg}", agg, "auto") for agg in args.aggs if "auto" in args.layouts]
    return out + [(f"vec-hv@{layout}", "hv", layout) for layout in args.layouts if layout != "auto"]


# -- configuration ------------------------------------------------------------------------------------------
def mgd_solver(k: int, requested: str) -> str:
    """:func:`gan_bench.aggregation.resolve_solver`, with the exact solver's limit as a command-line error."""
    if requested == "exact" and k > MAX_EXACT_K:
        raise ValueError(f"--mgd-solver exact supports K <= {MAX_EXACT_K} discriminators, got K = {k}; "
                         "use --mgd-solver auto, interior_point or frank_wolfe")
    return resolve_solver(requested, k)


def bench_config(k: int, agg: str, args: argparse.Namespace) -> DictConfig:
    overrides = [f"discriminators.count={k}", f"aggregation={agg}", "dataset=digits", "dataset.resolution=32",
                 "dataset.channels=3", f"train.batch_size={args.batch_size}", "train.measure_flops=false",
                 f"train.device={args.device}", "train.progress=off", f"train.seed={args.seed}"]
    if agg == "mgd":
        overrides.append(f"aggregation.solver={mgd_solver(k, args.mgd_solver)}")
    return compose(overrides + list(args.overrides))


def check_reference_config(cfg: DictConfig) -> None:
    """The loop reference implements plain alternating Adam on the non-saturating loss and nothing else."""
    from gan_bench.config import component_groups, plain
    from gan_bench.run import player_settings

    tree = plain(cfg)

    def option(where: str) -> str | None:
        return component_groups()[where].name_of(tree_select(tree, where)["_target_"])

    g, d = player_settings(cfg.optimizer, "g"), player_settings(cfg.optimizer, "d")
    unsupported = {
        "loss": (option("loss"), "ns"), "loss.real_label": (cfg.loss.get("real_label", 1.0), 1.0),
        "optimizer/base": (option("optimizer.base"), "adam"),
        "optimizer/rule": (option("optimizer.rule"), "alternating"),
        "train.n_dis": (cfg.train.n_dis, 1), "discriminators.spectral_norm": (cfg.discriminators.spectral_norm, False),
        "model/discriminator": (option("model.discriminator"), "dcgan"),
        "discriminators/projection": (option("discriminators.projection"), "none"),
        "regularizer.gp": (str(cfg.regularizer.gp), "none"),
        "regularizer.instance_noise": (cfg.regularizer.instance_noise, 0.0),
        "regularizer.feature_matching": (cfg.regularizer.feature_matching, 0.0),
        "regularizer.historical_averaging": (cfg.regularizer.historical_averaging, 0.0),
        "regularizer.unroll.steps": (cfg.regularizer.unroll.steps, 0),
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

    D step: one batch ``(x, z)`` for all; for each k, ``L_D^k = BCE(D_k(x), 1) + BCE(D_k(G(z)), 0)``,
    its own backward and Adam step. G step: a fresh ``z``; ``l_k = BCE(D_k(G(z)), 1)`` (non-saturating),
    ``L = -sum_k log(eta - l_k)``, ``eta = delta * max_k l_k`` detached (hypervolume). The losses stay
    on the device (no ``.item()``) and G's backward does not compute the Ds' weight gradients, so the
    reference does no work the method does not need."""

    def __init__(self, G: nn.Module, discriminators: Sequence[nn.Module], sample: Callable[[], Sample],
                 cfg: DictConfig):
        self.G, self.discriminators, self.sample = G, list(discriminators), sample
        from gan_bench.run import player_settings

        self.delta = cfg.aggregation.delta
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
        eta = self.delta * l_k.detach().max()
        loss = -torch.log(eta - l_k).sum()
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=self.g_params)
        self.g_opt.step()
        return torch.stack(d_losses), l_k.detach()


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
    d_loss_max_diff: float
    g_loss_max_diff: float
    d_loss_mean: float
    g_loss_mean: float
    passed: bool


def first_step_check(run: Run, loop: LoopReference, seed: int, tol: float) -> Check:
    """Run one iteration of each from the same RNG state (in float32); compare the K D losses and the
    K generator losses."""
    with tf32(run.device, False):  # compare float32 results, not TF32 rounding
        torch.manual_seed(seed)
        run.opt.step()
        vec_d, vec_g = run.game.last["d/loss"], run.game.last["g/l_k"]
        torch.manual_seed(seed)
        loop_d, loop_g = loop.step()
    dd = (vec_d - loop_d).abs().max().item()
    dg = (vec_g - loop_g).abs().max().item()
    return Check(len(loop.discriminators), dd, dg, loop_d.mean().item(), loop_g.mean().item(),
                 dd <= tol and dg <= tol)


# -- timing --------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    k: int
    method: str
    solver: str | None
    ms_per_iter: float  # median over repeats
    repeats_ms: list[float] = field(default_factory=list)


def time_interleaved(steps: dict[str, Callable[[], object]], device: torch.device, warmup: int, iters: int,
                     repeats: int) -> dict[str, list[float]]:
    """ms per iteration of each method in ``repeats`` rounds; a round times one block of ``iters`` iterations
    of every method in turn (so a change of machine load hits all methods alike), after ``warmup``
    untimed iterations of each. On CUDA, ``torch.cuda.synchronize`` closes every block."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for step in steps.values():
        for _ in range(warmup):
            step()
    out: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(iters):
                step()
            sync()
            out[name].append(1000.0 * (time.perf_counter() - t0) / iters)
    return out


def bench_k(k: int, args: argparse.Namespace, device: torch.device, run_dir: Path) -> tuple[list[Timing], Check]:
    """The sanity check, then every method at K discriminators, timed in interleaved rounds."""
    check_run = Run(bench_config(k, "hv", args), run_dir)
    loop = pair_loop_with_run(check_run)
    check = first_step_check(check_run, loop, args.seed + 1, args.check_tol)
    steps: dict[str, Callable[[], object]] = {LOOP: loop.step}
    solvers: dict[str, str | None] = {LOOP: None}
    for method, agg, layout in vec_methods(args):
        cfg = bench_config(k, agg, args)
        run = Run(cfg, run_dir)
        run.D.layout = layout  # how the ensemble evaluates its members; parameters and optimizer are untouched
        steps[method] = run.opt.step
        solvers[method] = str(cfg.aggregation.solver) if agg == "mgd" else None
    ms = time_interleaved(steps, device, args.warmup, args.iters, args.repeats)
    del check_run, loop, steps
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return [Timing(k, m, solvers[m], statistics.median(v), v) for m, v in ms.items()], check


# -- report --------------------------------------------------------------------------------------------------
def ratios(timings: list[Timing], ks: list[int], device: torch.device) -> list[dict]:
    """The ratios the targets are stated in: loop / vectorised HV per K (also for each extra layout),
    vectorised K_max / K_min, vectorised MGD / HV per K. ``target`` is the bound, ``sense`` ">=" or "<=",
    ``on`` the device type the target is stated for."""
    ms = {(t.k, t.method): t.ms_per_iter for t in timings}
    out = []

    def add(name: str, k: str, num: tuple[int, str], den: tuple[int, str], target: float | None, sense: str,
            on: str = "cuda") -> None:
        if num in ms and den in ms:
            out.append({"ratio": name, "k": k, "value": ms[num] / ms[den], "target": target, "sense": sense, "on": on})

    for k in ks:
        if device.type == "cpu":
            add("loop / vec-hv", str(k), (k, LOOP), (k, "vec-hv"), CPU_LOOP_OVER_VEC, ">=", "cpu")
        else:
            add("loop / vec-hv", str(k), (k, LOOP), (k, "vec-hv"), TARGETS["loop_over_vec"] if k == 24 else None, ">=")
    extra = sorted({m for _, m in ms if m.startswith("vec-hv@")})
    for k in ks:
        for m in extra:
            add(f"loop / {m}", str(k), (k, LOOP), (k, m), None, ">=")
    lo, hi = min(ks), max(ks)
    if hi != lo:
        for agg in SCALE_AGGS:
            target = TARGETS["scaling"] if (lo, hi) == (1, 24) else None
            add(f"vec-{agg} K={hi} / K={lo}", f"{hi}/{lo}", (hi, f"vec-{agg}"), (lo, f"vec-{agg}"), target, "<=")
    for k in ks:
        add("vec-mgd / vec-hv", str(k), (k, "vec-mgd"), (k, "vec-hv"), TARGETS["mgd_over_hv"], "<=")
    return out


def verdict(r: dict, device: torch.device) -> str:
    if r["target"] is None:
        return "-"
    met = r["value"] >= r["target"] if r["sense"] == ">=" else r["value"] <= r["target"]
    word = "yes" if met else "no"
    return word if device.type == r["on"] else f"({word}; {r['on'].upper()} target)"


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
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads"


def print_report(timings: list[Timing], checks: list[Check], rows: list[dict], args: argparse.Namespace,
                 device: torch.device) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 132)
    console.print(f"device: {device_name(device)} | torch {torch.__version__} | batch {args.batch_size} | "
                  f"DCGAN 32x32x3 | warmup {args.warmup}, {args.repeats} x {args.iters} timed iterations")
    console.print(f"vec-<agg>: the ensemble's layout auto (what training uses) = {resolve_layout('auto', device)} on "
                  f"{device.type}; vec-hv@<layout>: that layout forced")
    if args.overrides:
        console.print(f"extra overrides: {' '.join(args.overrides)}")

    check_table = Table(title=f"first-step sanity check, ensemble (layout auto) vs loop (tol {args.check_tol:g})")
    for col in ("K", "max |dD loss|", "max |dG loss l_k|", "mean D loss", "mean l_k", "ok"):
        check_table.add_column(col, justify="right")
    for c in checks:
        check_table.add_row(str(c.k), f"{c.d_loss_max_diff:.2e}", f"{c.g_loss_max_diff:.2e}", f"{c.d_loss_mean:.4f}",
                            f"{c.g_loss_mean:.4f}", "yes" if c.passed else "[red]NO[/red]")
    console.print(check_table)

    methods = [LOOP] + [m for m, _, _ in vec_methods(args)]
    table = Table(title="ms / iteration (median; spread = (max - min) / median over repeats)")
    table.add_column("K", justify="right")
    for m in methods:
        table.add_column(m, justify="right")
    by = {(t.k, t.method): t for t in timings}
    for k in args.ks:
        cells = []
        for m in methods:
            t = by.get((k, m))
            if t is None:
                cells.append("-")
                continue
            spread = (max(t.repeats_ms) - min(t.repeats_ms)) / t.ms_per_iter
            solver = f" ({t.solver})" if t.solver else ""
            cells.append(f"{t.ms_per_iter:.1f} ±{100 * spread / 2:.0f}%{solver}")
        table.add_row(str(k), *cells)
    console.print(table)

    ratio_table = Table(title=f"ratios (loop / vec-hv >= {CPU_LOOP_OVER_VEC:g} is the CPU's target; the others are "
                              "stated for CUDA)")
    for col in ("ratio", "K", "value", "target", "met"):
        ratio_table.add_column(col, justify="right")
    for r in rows:
        target = f"{r['sense']} {r['target']:g}" if r["target"] is not None else "-"
        ratio_table.add_row(r["ratio"], r["k"], f"{r['value']:.2f}x", target, verdict(r, device))
    console.print(ratio_table)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. model.discriminator.width=32")
    parser.add_argument("--ks", default="1,8,24", help="numbers of discriminators, comma-separated (default 1,8,24)")
    parser.add_argument("--aggs", default=",".join(AGGS), help=f"vectorised aggregations (default {','.join(AGGS)})")
    parser.add_argument("--layouts", default="auto", help="ensemble layouts to time, comma-separated, from "
                        f"{', '.join(LAYOUTS)}: auto for every aggregation (vec-<agg>), the others for hv "
                        "(vec-hv@<layout>) (default auto)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--iters", type=int, default=20, help="iterations per timed repeat (default 20)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations before timing (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported (default 5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--mgd-solver", default="auto", choices=("auto", "exact", "interior_point", "frank_wolfe"),
                        help=f"auto: exact for K <= {MAX_EXACT_K}, interior_point above (default)")
    parser.add_argument("--check-tol", type=float, default=1e-4, help="max |difference| of first-step losses")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        args.ks = [int(k) for k in args.ks.split(",") if k.strip()]
    except ValueError:
        parser.error(f"--ks must be comma-separated integers, got {args.ks!r}")
    if not args.ks or min(args.ks) < 1:
        parser.error(f"--ks needs at least one number of discriminators >= 1, got {args.ks}")
    args.layouts = list(dict.fromkeys(a.strip() for a in args.layouts.split(",") if a.strip()))
    if not args.layouts or set(args.layouts) - set(LAYOUTS):
        parser.error(f"--layouts: choose from {', '.join(LAYOUTS)}, got {args.layouts}")
    args.aggs = [a.strip() for a in args.aggs.split(",") if a.strip()]
    unknown = [a for a in args.aggs if a not in AGGS]
    if unknown:
        parser.error(f"--aggs: unknown aggregation(s) {unknown}; choose from {', '.join(AGGS)}")
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
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    try:
        check_reference_config(bench_config(args.ks[0], "hv", args))
    except ValueError as err:
        print(f"bench_multid.py: error: {err}", file=sys.stderr)
        return 2
    timings: list[Timing] = []
    checks: list[Check] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.ks:
            t, c = bench_k(k, args, device, Path(tmp))
            timings += t
            checks.append(c)
    rows = ratios(timings, args.ks, device)
    print_report(timings, checks, rows, args, device)
    if args.json is not None:
        out = {
            "device": args.device, "device_name": device_name(device), "torch": torch.__version__,
            "python": platform.python_version(),
            "auto_layout": resolve_layout("auto", device),
            "settings": {"ks": args.ks, "aggs": args.aggs, "layouts": args.layouts, "batch_size": args.batch_size,
                         "iters": args.iters,
                         "warmup": args.warmup, "repeats": args.repeats, "mgd_solver": args.mgd_solver,
                         "threads": torch.get_num_threads(),
                         "seed": args.seed, "overrides": list(args.overrides), "model": "dcgan 32x32x3",
                         "dataset": "digits"},
            "timings": [t.__dict__ for t in timings],
            "checks": [c.__dict__ for c in checks],
            "ratios": rows,
        }
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")
    if not all(c.passed for c in checks):
        print(f"sanity check FAILED: first-step losses differ by more than {args.check_tol:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
