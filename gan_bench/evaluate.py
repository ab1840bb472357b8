"""``gan-bench eval`` (metrics of a finished run) and ``gan-bench classifier train`` (the classifier-FID network)."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_bench.errors import ConfigError

EVAL_USAGE = ("usage: gan-bench eval RUN_DIR|CHECKPOINT [eval.metrics=[fid,is] eval.n_samples=50000 "
              "eval.generators=[raw,ema] eval.inception_weights=PATH ...]")
CLASSIFIER_USAGE = ("usage: gan-bench classifier train dataset=NAME [dataset.root=PATH] [classifier.arch=lenet|resnet18] "
                    "[classifier.epochs=10] [classifier.batch_size=128] [classifier.lr=0.001] [classifier.out=PATH] "
                    "[classifier.force=true] [train.device=auto|cpu|cuda]")


def _config_with(base: dict, overrides: list[str]):
    """The saved config with dotted overrides, checked against the schema (unknown keys and bad types fail)."""
    from gan_bench.config import Config, validate

    try:
        cfg = OmegaConf.merge(OmegaConf.structured(Config), base, OmegaConf.from_dotlist(overrides))
    except OmegaConfBaseException as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    validate(cfg)
    return cfg


def eval_main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(EVAL_USAGE)
        return 0 if args else 2
    import torch

    from gan_bench.checkpoint import load_checkpoint
    from gan_bench.files import atomic_write_json
    from gan_bench.train import Run, _evaluator, evaluate

    target, overrides = Path(args[0]), args[1:]
    bad = [o for o in overrides if "=" not in o or o.startswith(("resume", "hydra."))]
    if bad:
        raise ConfigError(f"cannot use {bad[0]!r} here; {EVAL_USAGE}")
    sd = load_checkpoint(target)
    cfg = _config_with(sd["config"], overrides)
    if not cfg.eval.metrics:
        raise ConfigError("nothing to evaluate: add eval.metrics=[fid] (or is, kid, pr, fid_classifier, modes)")
    run_dir = Path(sd["path"]).resolve().parent.parent
    run = Run(cfg, run_dir)
    run.load_state_dict(sd)
    evaluator = _evaluator(run)
    results = evaluate(run, evaluator, None, save_best=False)
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
    del torch
    return 0


def default_classifier_path(dataset: str, resolution: int, arch: str) -> str:
    """Where ``gan-bench classifier train`` writes by default (the presets' ``eval.classifier`` points here)."""
    return f"classifiers/{dataset}_{resolution}px_{arch}.pt"


def classifier_main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help") or args[0] != "train":
        print(CLASSIFIER_USAGE)
        return 0 if args and args[0] in ("-h", "--help") else 2
    import torch
    from hydra import compose, initialize_config_dir

    from gan_bench.files import atomic_write_bytes
    from gan_bench.cli import conf_dir
    from gan_bench.config import register_configs
    from gan_bench.data import load_dataset
    from gan_bench.metrics import save_classifier, train_classifier
    from gan_bench.train import pick_device

    opts = {"arch": None, "epochs": "10", "batch_size": "128", "lr": "0.001", "out": None, "force": "false"}
    rest = []
    for a in args[1:]:
        if a.startswith("classifier."):
            key, _, value = a[len("classifier."):].partition("=")
            if key not in opts:
                raise ConfigError(f"unknown option classifier.{key}; valid: {', '.join('classifier.' + k for k in opts)}")
            opts[key] = value
        else:
            rest.append(a)
    register_configs()
    from hydra.errors import HydraException

    try:
        if conf_dir().startswith("pkg://"):
            from hydra import initialize_config_module

            ctx = initialize_config_module("gan_bench.conf", version_base="1.3")
        else:
            ctx = initialize_config_dir(config_dir=conf_dir(), version_base="1.3")
        with ctx:
            cfg = compose("config", overrides=rest)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    d = cfg.dataset
    if d.name in ("ring8", "grid25"):
        raise ConfigError(f"dataset={d.name} has no classes to train a classifier on; use the modes metric instead")
    arch = opts["arch"] or ("lenet" if d.channels == 1 else "resnet18")
    out = Path(opts["out"] or default_classifier_path(d.name, d.resolution, arch))
    if out.exists() and opts["force"] not in ("true", "True", "1"):
        raise ConfigError(f"{out} exists; choose classifier.out=PATH or add classifier.force=true to replace it")
    device = pick_device(cfg.train.device)
    train, test = load_dataset(d, split="train"), load_dataset(d, split="test")
    if train.labels is None or test.labels is None:
        raise ConfigError(f"dataset={d.name} has no labels here; a classifier needs a labelled dataset")
    tx, ty = torch.cat(list(train.chunks(4096))), train.labels
    vx, vy = torch.cat(list(test.chunks(4096))), test.labels
    if d.name == "digits":  # its test split is the last 297 of the 1,797: train on the first 1,500 only
        tx, ty = tx[:1500], ty[:1500]
    model, acc = train_classifier(tx, ty, vx, vy, arch=arch, epochs=int(opts["epochs"]),
                                  batch_size=int(opts["batch_size"]), lr=float(opts["lr"]), device=device)
    tmp = out.with_name(f".{out.name}.partial")
    save_classifier(tmp, model, {"dataset": train.key, "test_accuracy": acc, "epochs": int(opts["epochs"]),
                                 "n_train": len(tx), "n_test": len(vx)})
    atomic_write_bytes(out, tmp.read_bytes())
    tmp.unlink()
    print(f"{arch} on {d.name} ({d.resolution}px): test accuracy {acc * 100:.2f}% on {len(vx)} images -> {out}")
    print(f"use it with: eval.metrics=[fid_classifier] eval.classifier={out}")
    return 0
