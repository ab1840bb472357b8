"""Atomic checkpoints with everything needed for an exact resume, and clear errors for bad ones.

A checkpoint holds G, all Ds, the aggregation, the game optimizer (base states, extrapolation state,
SVRE snapshot, Lookahead slow weights), parameter averages, regulariser state, the iteration, every
RNG state (python, numpy, torch, CUDA) and the resolved config. It is written to a temporary file in
the same folder, flushed and fsynced, then ``os.replace``d: a crash mid-write never leaves a broken file.
"""
from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.errors import CheckpointError
from gan_bench.files import atomic_write_bytes, atomic_write_json  # noqa: F401 (re-exported)

FORMAT = 1
# config keys that must match for a checkpoint to load into a run (anything else may change on resume)
COMPATIBILITY_KEYS = (
    "dataset.name", "dataset.resolution", "dataset.channels", "model.name", "model.z_dim", "model.g_width",
    "model.d_width", "model.depth", "model.g_norm", "model.d_norm", "model.spectral_norm",
    "model.minibatch_discrimination.b", "model.minibatch_discrimination.c", "discriminators.count",
    "discriminators.projection", "aggregation.name", "optimizer.name", "optimizer.update", "optimizer.lookahead.k",
    "optimizer.lookahead.k2", "optimizer.averaging.ema", "optimizer.averaging.uniform",
    "regularizer.historical_averaging",
)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint on the CPU, turning every way it can be broken into one readable CheckpointError."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / "checkpoints" / "last.pt", path / "last.pt"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise CheckpointError(f"no checkpoint in {path}: expected {candidates[0]}")
        path = found
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt and cannot be read ({first[:200]})") from None
    except Exception as err:  # unpickling garbage raises a zoo of exception types
        raise CheckpointError(f"checkpoint {path} is corrupt and cannot be read ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gan-bench checkpoint (format {FORMAT})")
    state["path"] = str(path)
    return state


def _get(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_compatible(saved_cfg: dict, cfg: dict, path: str) -> None:
    """Raise a CheckpointError naming every setting in which the checkpoint differs from the run's config."""
    diffs = [f"{k}: checkpoint has {_get(saved_cfg, k)!r}, config has {_get(cfg, k)!r}"
             for k in COMPATIBILITY_KEYS if _get(saved_cfg, k) != _get(cfg, k)]
    if diffs:
        raise CheckpointError(f"checkpoint {path} is incompatible with this config: " + "; ".join(diffs))
