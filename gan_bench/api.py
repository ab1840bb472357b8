"""gan-bench from Python (a notebook, a script): the same config, checks and run folder as ``gan-bench train``.

    from gan_bench.api import compose_config, load_metrics, train

    cfg = compose_config(["aggregation=hv", "discriminators=d4", "train.iterations=500"])
    result = train(cfg, "runs/hv4")                    # metrics.json's content, as a dict
    result["best"]["fid_classifier"]["value"]
    load_metrics("runs/hv4")["eval"]                   # every evaluation, with its protocol

``compose_config`` is Hydra's compose API on gan-bench's ``conf/`` (your own ``./conf`` too) and the strict check
of the command line; ``train`` refuses a folder that already holds a run (``resume=True`` continues it instead,
from its checkpoint and stored config) and holds the folder's lock while it trains. Errors are
:class:`gan_bench.errors.GanBenchError` subclasses with the CLI's one-line messages.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``gan-bench train OVERRIDES`` would run, checked (a ConfigError names a bad key or value)."""
    from gan_bench.config import check_config
    from gan_bench.launch import compose_config as compose

    cfg = compose(list(overrides))
    check_config(cfg)
    return cfg


def train(cfg: DictConfig, run_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` and return metrics.json's content; ``resume=True`` continues the run in
    ``run_dir`` from its last checkpoint with the config stored there (``cfg`` is then ignored)."""
    from gan_bench.checkpoint import load_checkpoint
    from gan_bench.errors import ConfigError
    from gan_bench.launch import holds_run, stored_with_command
    from gan_bench.train import train as train_run

    run_dir = Path(run_dir).expanduser()
    if resume:
        state = load_checkpoint(run_dir)
        stored = stored_with_command(state["config"], [], lambda key: False, lambda keys: "")
        stored.resume = "true"
        return train_run(stored, run_dir, state=state)
    found = holds_run(run_dir)
    if found:
        raise ConfigError(f"{run_dir} already holds a run ({', '.join(found)}); continue it with "
                          "gan_bench.train(cfg, run_dir, resume=True), or choose another folder")
    return train_run(cfg, run_dir)


def load_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A run's metrics.json (plain data: read, never executed)."""
    return json.loads((Path(run_dir).expanduser() / "metrics.json").read_text())
