"""Atomic checkpoints with everything needed for an exact resume, and clear errors for bad ones.

A checkpoint holds G, all Ds, the aggregation, the game optimizer (base states, extrapolation state,
SVRE snapshot, Lookahead slow weights), parameter averages, the stabilisers' state, the iteration, every
RNG state (python, numpy, torch, CUDA) and the resolved config. It is written to a temporary file in
the same folder, flushed and fsynced, then ``os.replace``d: a crash mid-write never leaves a broken file.

A checkpoint may come from someone else, so loading it never runs code: it holds tensors and plain data only
(dicts, lists, tuples, strings, numbers; format 3) and is read by :func:`gan_bench.loading.load_tensors`
(``torch.load(weights_only=True)``). Format 2 stored numpy's RNG state as a numpy array, which that loader also
rebuilds, so such files still load. A file naming anything else is refused in one line before anything in it is
built.
"""
from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.errors import CheckpointError, GanBenchError
from gan_bench.files import atomic_write
from gan_bench.loading import load_tensors

#: 3: tensors and plain data only (numpy's RNG state as a tensor); 2: numpy's RNG state as a numpy array; 1: the flat
#: config of before the _target_ nodes (refused)
FORMAT = 3
READABLE = (2, 3)
#: config keys a resumed run may change; every other key defines the run (its maths) and must stay as it was
RESUMABLE = ("train.iterations", "train.log_every", "train.checkpoint_every", "train.sample_every", "train.progress",
             "train.device", "train.measure_flops", "train.on_nan", "train.max_rollbacks", "train.rollback_lr_factor",
             "train.max_abs_loss", "train.collapse_checks", "train.collapse_g_loss", "train.objective",
             "discriminators.layout", "eval", "name", "resume", "plugins")


def rng_state() -> dict:
    """Every RNG state as tensors and plain data (numpy's MT19937 key as an int64 tensor)."""
    legacy = np.random.get_state(legacy=False)
    numpy_state = {"bit_generator": legacy["bit_generator"], "has_gauss": int(legacy["has_gauss"]),
                   "gauss": float(legacy["gauss"]),
                   "state": {"key": torch.from_numpy(legacy["state"]["key"].astype(np.int64)),
                             "pos": int(legacy["state"]["pos"])}}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state(saved: Any) -> Any:
    """numpy's RNG state as ``np.random.set_state`` takes it, from format 3 (plain) or format 2 (numpy's tuple)."""
    if isinstance(saved, dict):
        key = saved["state"]["key"]
        key = key.numpy() if isinstance(key, torch.Tensor) else np.asarray(key)
        return {**saved, "state": {"key": key.astype(np.uint32), "pos": saved["state"]["pos"]}}
    return saved


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically (a kill or a full disk leaves the previous checkpoint intact)."""
    from gan_bench import faults

    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    data = buf.getvalue()
    atomic_write(path, lambda f: f.write(data),
                 before_rename=lambda tmp: faults.before_rename(tmp, state.get("iteration")))


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint on the CPU, turning every way it can be broken into one readable CheckpointError. Nothing in
    the file runs: see the module doc."""
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
        state = load_tensors(path, f"checkpoint {path}")
    except GanBenchError:
        raise
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt and cannot be read ({first[:200]})") from None
    except Exception as err:  # unpickling garbage raises a zoo of exception types
        raise CheckpointError(f"checkpoint {path} is corrupt and cannot be read ({type(err).__name__})") from None
    if isinstance(state, dict) and state.get("format") == 1:
        raise CheckpointError(f"{path} was written by an earlier gan-bench (checkpoint format 1, before the config "
                              "became _target_ nodes); this version cannot resume it: start a new run")
    if not isinstance(state, dict) or state.get("format") not in READABLE:
        raise CheckpointError(f"{path} is not a gan-bench checkpoint (format {FORMAT})")
    state["path"] = str(path)
    return state


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def config_changes(saved: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """``(key, saved value, new value)`` for every dotted key that differs between two configs."""
    a, b = _flatten(saved), _flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def resumable(key: str) -> bool:
    return any(key == r or key.startswith(r + ".") for r in RESUMABLE)


def check_resumable(saved: dict, new: dict, path: str) -> None:
    """A resumed run keeps the configuration it was started with: raise a CheckpointError naming every key that
    differs from the checkpoint's, but those a resume may change (``RESUMABLE``)."""
    diffs = [f"{k} (checkpoint has {a!r}, now {b!r})" for k, a, b in config_changes(saved, new) if not resumable(k)]
    if diffs:
        raise CheckpointError(f"checkpoint {path}: a resumed run keeps its configuration, but these keys differ: "
                              + "; ".join(diffs) + f". Only {', '.join(RESUMABLE)} may change on resume")
