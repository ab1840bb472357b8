"""``gan-bench classifier train``: the domain classifier (LeNet / ResNet-18) of the classifier-FID metric."""
from __future__ import annotations

from pathlib import Path

from gan_bench.errors import ConfigError

CLASSIFIER_USAGE = ("usage: gan-bench classifier train dataset=NAME [dataset.root=PATH] "
                    "[classifier.arch=lenet|resnet18] [classifier.epochs=10] [classifier.batch_size=128] "
                    "[classifier.lr=0.001] [classifier.out=PATH] [classifier.force=true] [train.device=auto|cpu|cuda]")
OPTIONS = {"arch": None, "epochs": "10", "batch_size": "128", "lr": "0.001", "out": None, "force": "false"}


def default_classifier_path(dataset: str, resolution: int, arch: str) -> str:
    """Where ``gan-bench classifier train`` writes by default (the presets' ``eval.classifier`` points here)."""
    return f"classifiers/{dataset}_{resolution}px_{arch}.pt"


def classifier_main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help") or args[0] != "train":
        print(CLASSIFIER_USAGE)
        return 0 if args and args[0] in ("-h", "--help") else 2
    import torch

    from gan_bench.data import load_dataset
    from gan_bench.launch import compose_config
    from gan_bench.metrics import save_classifier, train_classifier
    from gan_bench.run import pick_device

    opts, rest = _options(args[1:])
    cfg = compose_config(rest)
    d = cfg.dataset
    from gan_bench.data import MIXTURES

    if d.name in MIXTURES:
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
    save_classifier(out, model, {"dataset": train.key, "test_accuracy": acc, "epochs": int(opts["epochs"]),
                                 "n_train": len(tx), "n_test": len(vx)})  # written atomically
    print(f"{arch} on {d.name} ({d.resolution}px): test accuracy {acc * 100:.2f}% on {len(vx)} images -> {out}")
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
