"""``gan-bench eval``: metrics of a finished run or checkpoint, appended to its metrics.json."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_bench.errors import ConfigError

EVAL_USAGE = ("usage: gan-bench eval RUN_DIR|CHECKPOINT [eval.metrics=[fid,is] eval.n_samples=50000 "
              "eval.generators=[raw,ema] eval.inception_weights=PATH ...]")


def _config_with(base: dict, overrides: list[str]):
    """The checkpoint's config with the given ``eval.*`` / ``train.device`` overrides, checked."""
    from gan_bench.config import check_config

    for o in overrides:
        key = o.split("=", 1)[0]
        if not (key.startswith("eval.") or key == "train.device"):
            raise ConfigError(f"gan-bench eval can change eval.* and train.device only, not {key}; {EVAL_USAGE}")
    try:
        cfg = OmegaConf.merge(OmegaConf.create(base), OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    check_config(cfg)
    return cfg


def eval_main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(EVAL_USAGE)
        return 0 if args else 2
    from gan_bench.checkpoint import load_checkpoint
    from gan_bench.files import atomic_write_json
    from gan_bench.run import Run
    from gan_bench.train import build_evaluator, record_metrics

    target, overrides = Path(args[0]), args[1:]
    bad = [o for o in overrides if "=" not in o or o.startswith(("resume", "hydra."))]
    if bad:
        raise ConfigError(f"cannot use {bad[0]!r} here; {EVAL_USAGE}")
    sd = load_checkpoint(target)
    cfg = _config_with(sd["config"], overrides)
    if not cfg.eval.metrics:
        from gan_bench.config import metric_names

        raise ConfigError(f"nothing to evaluate: add eval.metrics=[fid] (registered: {', '.join(metric_names())})")
    run_dir = Path(sd["path"]).resolve().parent.parent
    run = Run(cfg, run_dir)
    run.load_state_dict(sd)
    evaluator = build_evaluator(run)
    results = record_metrics(run, evaluator, None, save_best=False)
    metrics_path = run_dir / "metrics.json"
    try:
        record = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{metrics_path} is corrupt ({err}); move it away to start a new one") from None
    for r in results:
        r["source"] = f"gan-bench eval {target}"
    record.setdefault("eval", []).extend(results)
    record.setdefault("protocol", {}).update(evaluator.protocol)
    record.setdefault("unavailable", {}).update(evaluator.unavailable)
    atomic_write_json(metrics_path, record)
    for r in results:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in r.items() if isinstance(v, float) and k != "wall_clock_s")
        print(f"iteration {r['iteration']} {r['generator']}: {shown}")
    for m, why in evaluator.unavailable.items():
        print(f"{m}: unavailable — {why}")
    print(f"appended to {metrics_path}")
    return 0
