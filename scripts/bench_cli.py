"""How long the CLI's answers take, against the interpreter's own start in the same run (the reference).

    python scripts/bench_cli.py [--rounds 5]

Target (issue 19): ``gan-bench train --help`` in under 2 s; it is read from conf/ and the metric files as text, so
it costs about an interpreter start. ``gan-bench train --cfg job`` (Hydra composes) is shown for scale.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CASES = {"python -c pass (reference)": ["-c", "pass"], "gan-bench --version": ["-m", "gan_bench", "--version"],
         "gan-bench train --help": ["-m", "gan_bench", "train", "--help"],
         "gan-bench eval --help": ["-m", "gan_bench", "eval", "--help"],
         "gan-bench train --cfg job": ["-m", "gan_bench", "train", "--cfg", "job"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    rounds = ap.parse_args().rounds
    times = {}
    for name, args in CASES.items():
        runs = []
        for _ in range(rounds):
            start = time.perf_counter()
            subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, check=True)
            runs.append(time.perf_counter() - start)
        times[name] = statistics.median(runs)
    ref = times["python -c pass (reference)"]
    print(f"{'command':<30} {'median s':>9} {'/ python':>9}")
    for name, t in times.items():
        print(f"{name:<30} {t:>9.3f} {t / ref:>8.1f}x")
    ok = times["gan-bench train --help"] < 2.0
    print(f"target gan-bench train --help < 2 s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
