"""``gan-bench eval``: metrics of a finished run or of a checkpoint file, recorded where they belong.

* A run folder, or its own ``checkpoints/last.pt`` / ``best.pt``: the entries are appended to the run's
  ``metrics.json`` (holding the run folder's lock: not while the run trains).
* Any other checkpoint file (another run's file copied somewhere, a download): a record of its own beside it,
  ``NAME.metrics.json`` for ``NAME.pt``, or ``--out FILE``; never another run's ``metrics.json``.

The checkpoint's stored config is data (:mod:`gan_bench.trust`): its classes and plugins must be gan-bench's own or
named on this command line; only ``eval.*``, ``train.device`` and ``plugins`` may differ from it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan_bench.errors import ConfigError

DESCRIPTION = ("Compute metrics (FID, IS, KID, precision/recall, classifier-FID, mode coverage) of a trained "
               "generator. RUN_DIR or its own checkpoints/last.pt|best.pt: appended to the run's metrics.json; any "
               "other checkpoint file: a record of its own beside it (NAME.metrics.json) or --out FILE.")
EXAMPLE = """examples:
  gan-bench eval outputs/2026-12-01/10-00-00 eval.metrics=[fid,kid] eval.n_samples=10000
  gan-bench eval ~/downloads/model.pt eval.metrics=[fid_classifier] eval.classifier=classifiers/digits_16px_lenet.pt

Overrides: eval.* (metrics, n_samples, split, generators, inception_weights, classifier, ...), train.device,
plugins=[module] (your own metrics); a key=value repeating the stored value (e.g. a class of yours named by
_target_) is accepted. Everything else comes from the checkpoint."""


def parser() -> argparse.ArgumentParser:
    from gan_bench.commands import Parser

    p = Parser(prog="gan-bench eval", description=DESCRIPTION, epilog=EXAMPLE,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="RUN_DIR|CHECKPOINT", help="a run folder or a checkpoint file")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="eval.*, train.device or plugins overrides")
    p.add_argument("--out", metavar="FILE", help="write the record here instead (a new file, or an earlier record "
                                                 "of the same checkpoint, which is appended to)")
    return p


def _may_change(key: str) -> bool:
    return key == "eval" or key.startswith("eval.") or key in ("train.device", "plugins")


def _record_path(ckpt: Path, out: str | None) -> tuple[Path, Path | None]:
    """(where the entries go, the run folder whose own record that is, or None)."""
    from gan_bench.launch import holds_run

    ckpt = ckpt.resolve()
    run_dir = ckpt.parent.parent
    own = ckpt.parent.name == "checkpoints" and ckpt.name in ("last.pt", "best.pt") and \
        any(m in holds_run(run_dir) for m in ("metrics.json", "status.json", ".hydra"))
    if out is not None:
        target = Path(out).expanduser().resolve()
        return target, run_dir if own and target == run_dir / "metrics.json" else None
    if own:
        return run_dir / "metrics.json", run_dir
    return ckpt.with_name(f"{ckpt.stem}.metrics.json"), None


def _earlier_record(path: Path, run_dir: Path | None, digest: str) -> dict:
    """The record the entries are appended to: the run's metrics.json, an earlier record of this very checkpoint,
    or a new one; anything else at ``path`` is refused (it belongs to something else)."""
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is corrupt ({err}); move it away to start a new one") from None
    if run_dir is not None:
        return record
    if not isinstance(record, dict) or record.get("checkpoint_sha256") != digest:
        raise ConfigError(f"{path} is not a record of this checkpoint (it belongs to another run or file); choose "
                          "another --out FILE — nothing was written")
    return record


def eval_main(args: list[str]) -> int:
    from gan_bench import runlock

    opts = parser().parse_intermixed_args(args)
    bad = [o for o in opts.overrides if "=" not in o or o.startswith(("resume", "hydra.", "-"))]
    if bad:
        raise ConfigError(f"cannot use {bad[0]!r} here; see gan-bench eval --help")
    from gan_bench.checkpoint import load_checkpoint

    target = Path(opts.target).expanduser()
    sd = load_checkpoint(target)
    record_path, run_dir = _record_path(Path(sd["path"]), opts.out)
    if run_dir is None:
        return _evaluate(sd, opts, record_path, None)
    with runlock.hold(run_dir):  # the run's own record: not while another process trains or evaluates into it
        return _evaluate(sd, opts, record_path, run_dir)


def _evaluate(sd: dict, opts: argparse.Namespace, record_path: Path, run_dir: Path | None) -> int:
    from gan_bench.config import check_config, metric_names
    from gan_bench.files import atomic_write_json, file_sha256
    from gan_bench.launch import stored_with_command
    from gan_bench.metrics.registry import metric_keys
    from gan_bench.run import Run
    from gan_bench.train import build_evaluator, record_metrics

    cfg = stored_with_command(sd["config"], list(opts.overrides), _may_change,
                              lambda keys: f"gan-bench eval can change eval.*, train.device and plugins only, not "
                                           f"{', '.join(keys)}; see gan-bench eval --help")
    check_config(cfg)
    if not cfg.eval.metrics:
        raise ConfigError(f"nothing to evaluate: add eval.metrics=[fid] (registered: {', '.join(metric_names())})")
    digest = file_sha256(Path(sd["path"]))
    record = _earlier_record(record_path, run_dir, digest)
    run = Run(cfg, run_dir or record_path.parent)
    run.load_state_dict(sd)
    evaluator = build_evaluator(run)
    results = record_metrics(run, evaluator, None, save_best=False)
    for r in results:
        r["source"] = f"gan-bench eval {opts.target}"
        r["checkpoint"] = str(Path(sd["path"]).resolve())
    if run_dir is None and not record:
        record = {"checkpoint": str(Path(sd["path"]).resolve()), "checkpoint_sha256": digest,
                  "iteration": run.iteration, "name": cfg.name, "config": sd["config"]}
    record.setdefault("eval", []).extend(results)
    record.setdefault("protocol", evaluator.protocol)  # a run's own stays its training protocol; each entry has its own
    record.setdefault("unavailable", {}).update(evaluator.unavailable)
    record.setdefault("metric_keys", {}).update(metric_keys(evaluator.metrics))  # directions, for gan-bench report
    atomic_write_json(record_path, record)
    for r in results:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in r.items() if isinstance(v, float) and k != "wall_clock_s")
        shown += f" (n_samples={cfg.eval.n_samples}, split={cfg.eval.split})"
        print(f"iteration {r['iteration']} {r['generator']}: {shown}")
    for m, why in evaluator.unavailable.items():
        print(f"{m}: unavailable — {why}")
    if run_dir is not None:
        print(f"appended to {record_path}")
    else:
        print(f"written to {record_path} (the record of {Path(sd['path']).resolve()}; no run's metrics.json was "
              "changed)")
    return 0
