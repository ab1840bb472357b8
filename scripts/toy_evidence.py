"""Mode-coverage evidence on the 2-D toys, 3 seeds per arm, on CPU.

Three comparisons, each arm a Hydra multirun of ``python -m gan_bench train -m`` over ``train.seed``:

  (a) ring8: plain non-saturating GAN vs the unrolled GAN (Metz et al. 2017), same nets and iterations
  (b) grid25: baseline vs minibatch discrimination with B=16 kernels (Salimans et al. 2016)
  (c) grid25: K=1 discriminator (AVG) vs K=8 discriminators with hypervolume maximisation (Albuquerque et al. 2019);
      its K=1 arm is (b)'s baseline (the same runs), trained once when both comparisons are asked for

then one ``gan-bench report`` table per comparison (markdown): modes covered, high-quality fraction and
mode KL (``gan_bench.metrics.modes``), mean ± sample std over the seeds, plus the cost columns.

    python scripts/toy_evidence.py                                  # all three into multirun/toy_evidence
    python scripts/toy_evidence.py --only a                         # one comparison
    python scripts/toy_evidence.py --out /tmp/smoke --iterations 50 --seeds 1 --n-samples 500   # smoke run
    python scripts/toy_evidence.py --report-only                    # the tables of an existing --out

Each training process runs single-threaded (``--threads``): these MLPs are far too small to gain from more
threads, and on a shared CPU extra threads only contend.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METRICS = "modes_covered,high_quality,mode_kl"


@dataclass(frozen=True)
class Arm:
    folder: str  # under --out, e.g. "a/ring8"
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    title: str
    by: str  # config keys the report groups by
    arms: tuple[Arm, ...]


BASELINE_GRID25 = Arm("b/baseline", ("+experiment=grid25",))


COMPARISONS: dict[str, Comparison] = {
    "a": Comparison(
        "(a) ring8: NS-GAN vs unrolled GAN (same nets, same iterations)",
        "name,stabilizers.unrolled.steps",
        (Arm("a/ring8", ("+experiment=ring8",)), Arm("a/ring8_unrolled", ("+experiment=ring8_unrolled",))),
    ),
    "b": Comparison(
        "(b) grid25: baseline vs minibatch discrimination (B=16)",
        "model.discriminator.minibatch_kernels",
        (BASELINE_GRID25, Arm("b/mbd16", ("+experiment=grid25", "model.discriminator.minibatch_kernels=16"))),
    ),
    "c": Comparison(
        "(c) grid25: K=1 AVG vs K=8 HV",
        "discriminators.count,aggregation.name",
        (BASELINE_GRID25, Arm("c/k8_hv", ("+experiment=grid25", "discriminators=d8", "aggregation=hv"))),
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="multirun/toy_evidence", help="output folder (default: multirun/toy_evidence)")
    p.add_argument("--only", default="a,b,c", help="comma-separated subset of a, b, c (default: all)")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated train.seed values (default: 1,2,3)")
    p.add_argument("--iterations", type=int, help="override train.iterations of every arm (e.g. a smoke run)")
    p.add_argument("--n-samples", type=int, help="override eval.n_samples (default: the experiments' 2500)")
    p.add_argument("--threads", type=int, default=1, help="OMP/torch threads per training process (default: 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra Hydra override for every arm (repeatable)")
    p.add_argument("--report-only", action="store_true", help="only print the tables of an existing --out")
    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    args = p.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in only if c not in COMPARISONS]
    if unknown or not only:
        p.error(f"--only takes a comma-separated subset of {', '.join(COMPARISONS)}, got {args.only!r}")
    args.only = only
    seeds = [s.strip() for s in args.seeds.split(",") if s.strip()]
    if not seeds or not all(s.isdigit() for s in seeds):
        p.error(f"--seeds takes comma-separated non-negative integers, got {args.seeds!r}")
    args.seeds = ",".join(seeds)
    for name in ("iterations", "n_samples", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    bad = [s for s in args.set if "=" not in s]
    if bad:
        p.error(f"--set takes KEY=VALUE, got {bad[0]!r}")
    return args


def train_command(overrides: tuple[str, ...], sweep_dir: Path, args: argparse.Namespace) -> list[str]:
    """One Hydra multirun over the seeds, quiet: log lines every 100k iterations (i.e. only the last one)."""
    cmd = [sys.executable, "-m", "gan_bench", "train", "-m", *overrides, f"train.seed={args.seeds}",
           "train.progress=lines", "train.log_every=100000", f"hydra.sweep.dir={sweep_dir}"]
    if args.iterations:
        cmd.append(f"train.iterations={args.iterations}")
    if args.n_samples:
        cmd.append(f"eval.n_samples={args.n_samples}")
    return cmd + list(args.set)


def report_command(comparison: Comparison, out: Path) -> list[str]:
    return [sys.executable, "-m", "gan_bench", "report", *(str(out / arm.folder) for arm in comparison.arms),
            "--format", "markdown", "--metrics", METRICS, "--by", comparison.by]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    quote = subprocess.list2cmdline
    arms = list(dict.fromkeys(arm for key in args.only for arm in COMPARISONS[key].arms))  # each arm once
    if not args.report_only:
        for arm in arms:
            if (out / arm.folder).exists() and not args.dry_run:
                print(f"toy_evidence: {out / arm.folder} already exists; choose another --out, delete it, "
                      "or print its tables with --report-only", file=sys.stderr)
                return 2
        for arm in arms:
            cmd = train_command(arm.overrides, out / arm.folder, args)
            print(f"\n## {arm.folder}\n$ {quote(cmd)}", flush=True)
            if args.dry_run:
                continue
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=REPO, env=env)
            print(f"[{arm.folder}] {time.perf_counter() - start:.0f} s wall", flush=True)
            if done.returncode != 0:
                print(f"toy_evidence: {arm.folder} failed (exit {done.returncode})", file=sys.stderr)
                return done.returncode
    tables = []
    for key in args.only:
        comparison = COMPARISONS[key]
        cmd = report_command(comparison, out)
        if args.dry_run:
            print(f"$ {quote(cmd)}")
            continue
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"toy_evidence: report for {key} failed:\n{done.stderr}", file=sys.stderr)
            return done.returncode
        tables.append(f"### {comparison.title}\n\n{done.stdout.strip()}\n")
    if tables:
        text = "\n".join(tables)
        print("\n" + text)
        (out / "tables.md").write_text(text)
        print(f"(tables also written to {out / 'tables.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
