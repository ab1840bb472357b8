"""Classifier files of classifier-FID: where ``gan-bench classifier train`` writes them, where ``eval.classifier=null``
looks for them, and training one (the command, and the digits' LeNet trained on demand)."""
from __future__ import annotations

from pathlib import Path

import torch

from gan_bench.errors import ConfigError
from gan_bench.metrics.classifier import save_classifier, train_classifier
from gan_bench.metrics.errors import MetricsError


def default_classifier_path(dataset: str, resolution: int, arch: str) -> str:
    """Where ``gan-bench classifier train`` writes by default (the presets' ``eval.classifier`` points here)."""
    return f"classifiers/{dataset}_{resolution}px_{arch}.pt"


#: datasets whose classifier ``eval.classifier=null`` trains by itself when none is found: embedded, seconds on a CPU
TRAINED_ON_DEMAND = ("digits",)


def cached_classifier_path(dataset: str, resolution: int, arch: str) -> Path:
    """Where a classifier trained on demand is kept: gan-bench's cache (:func:`gan_bench.files.cache_dir`)."""
    from gan_bench.files import cache_dir

    return cache_dir() / "classifiers" / Path(default_classifier_path(dataset, resolution, arch)).name


def find_classifier(d, say=print) -> Path:
    """``eval.classifier=null``: the dataset's classifier at ``gan-bench classifier train``'s default path here, or
    in gan-bench's cache; for the embedded digits, trained once into the cache (about 5 s); otherwise one line
    naming the command that makes it."""
    arch = "lenet" if d.channels == 1 else "resnet18"
    here, cached = Path(default_classifier_path(d.name, d.resolution, arch)), cached_classifier_path(
        d.name, d.resolution, arch)
    for path in (here, cached):
        if path.is_file():
            return path
    if d.name not in TRAINED_ON_DEMAND:
        raise MetricsError(f"fid_classifier needs a classifier of dataset={d.name}: make it with gan-bench classifier "
                           f"train dataset={d.name} (it is then found at {here}), or give eval.classifier=FILE")
    say(f"[gan-bench] classifier-FID: training the {arch} of dataset={d.name} once (a few seconds), kept in {cached}")
    return train_and_save(d, arch, out=cached, say=say)


def train_and_save(d, arch: str, out: Path, device: torch.device | None = None, epochs: int = 10,
                   batch_size: int = 128, lr: float = 1e-3, say=print) -> Path:
    """Train the classifier of dataset config ``d`` on its training split, report its test accuracy, save it."""
    from gan_bench.data import load_dataset

    device = device or torch.device("cpu")
    train, test = load_dataset(d, split="train"), load_dataset(d, split="test")
    if train.labels is None or test.labels is None:
        raise ConfigError(f"dataset={d.name} has no labels here; a classifier needs a labelled dataset")
    tx, ty = torch.cat(list(train.chunks(4096))), train.labels
    vx, vy = torch.cat(list(test.chunks(4096))), test.labels
    if d.name == "digits":  # its test split is the last 297 of the 1,797: train on the first 1,500 only
        tx, ty = tx[:1500], ty[:1500]
    with torch.random.fork_rng(devices=[]):  # its own seed; a training run's random stream is left as it was
        torch.manual_seed(0)
        model, acc = train_classifier(tx, ty, vx, vy, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                                      device=device)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_classifier(out, model, {"dataset": train.key, "test_accuracy": acc, "epochs": epochs,
                                 "n_train": len(tx), "n_test": len(vx)})  # written atomically
    say(f"{arch} on {d.name} ({d.resolution}px): test accuracy {acc * 100:.2f}% on {len(vx)} images -> {out}")
    return out
