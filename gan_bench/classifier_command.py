"""``gan-bench classifier train``: the domain classifier (LeNet / ResNet-18) of the classifier-FID metric."""
from __future__ import annotations

from pathlib import Path

from gan_bench.commands import CLASSIFIER_OPTIONS as OPTIONS
from gan_bench.commands import classifier_parser
from gan_bench.errors import ConfigError
from gan_bench.metrics.classifier_files import default_classifier_path, train_and_save

__all__ = ["classifier_main", "default_classifier_path"]


def classifier_main(args: list[str]) -> int:
    ns = classifier_parser().parse_args(args)  # --help, or one line and exit 2 for a usage error
    from gan_bench.data import MIXTURES
    from gan_bench.launch import compose_config

    opts, rest = _options(ns.overrides)
    cfg = compose_config(rest)
    d = cfg.dataset
    if d.name in MIXTURES:
        raise ConfigError(f"dataset={d.name} has no classes to train a classifier on; use the modes metric instead")
    arch = opts["arch"] or ("lenet" if d.channels == 1 else "resnet18")
    out = Path(opts["out"] or default_classifier_path(d.name, d.resolution, arch))
    if out.exists() and opts["force"] not in ("true", "True", "1"):
        raise ConfigError(f"{out} exists; choose classifier.out=PATH or add classifier.force=true to replace it")
    from gan_bench.run import pick_device

    train_and_save(d, arch, out, pick_device(cfg.train.device), epochs=int(opts["epochs"]),
                   batch_size=int(opts["batch_size"]), lr=float(opts["lr"]))
    print(f"use it with: eval.metrics=[fid_classifier] eval.classifier={out}")
    return 0


def _options(args: list[str]) -> tuple[dict, list[str]]:
    """``classifier.KEY=VALUE`` options, and the rest (config overrides of the dataset and device)."""
    opts, rest = dict(OPTIONS), []
    for a in args:
        if a.startswith("classifier."):
            key, _, value = a[len("classifier."):].partition("=")
            if key not in opts:
                raise ConfigError(f"unknown option classifier.{key}; "
                                  f"valid: {', '.join('classifier.' + k for k in opts)}")
            opts[key] = value
        else:
            rest.append(a)
    return opts, rest
