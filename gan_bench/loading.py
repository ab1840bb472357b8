"""Loading never runs code: the one way gan-bench reads a torch file (a checkpoint, an optimizer state, a
classifier or Inception weights file), since any of them may come from someone else.

``torch.load(weights_only=True)``: its unpickler builds tensors and plain data (dicts, lists, tuples, strings,
numbers) and nothing else; gan-bench allows besides only what rebuilds a plain numpy array (numpy's array
reconstructor, ``ndarray``, ``dtype`` and the uint32 dtype class: the RNG state of checkpoint format 2). A file that
names any other global (a class, or a function such as ``os.system`` behind a ``__reduce__``) is refused with one
line naming it, before anything in the file is built. JSON, YAML (``safe_load``), ``.npz`` (``allow_pickle=False``)
and the pickled MNIST (numpy arrays only, :mod:`gan_bench.data.sources`) are the other formats gan-bench reads.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.errors import UnsafeFileError


def _numpy_array_globals() -> list:
    """What the unpickler needs to rebuild a plain numpy array (format 2's numpy RNG state): numpy's array
    reconstructor, ndarray, dtype and the uint32 dtype class; nothing that can call other code."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_tensors(source: Any, what: str) -> Any:
    """``torch.load(source, weights_only=True)`` on the CPU, allowing plain numpy arrays besides tensors and plain
    data. A file naming any other global is refused with one :class:`UnsafeFileError` naming what it asked for
    (nothing in it is built); other unreadable files raise what torch raises."""
    import warnings

    try:
        with torch.serialization.safe_globals(_numpy_array_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4": the refusal says it all
            return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        names = _globals_named(source)
        if not names:
            raise  # not a payload: an unreadable file, which the caller calls corrupt
        raise UnsafeFileError(f"{what} holds objects other than tensors and plain data ({', '.join(names[:3])}); "
                              "gan-bench loads only tensors and plain data from a file (it may come from anyone), so "
                              "it was not loaded and nothing in it ran") from None


def _globals_named(source: Any) -> list[str]:
    """The globals (``module.name``) a refused file (a path or an in-memory buffer) asks the unpickler for, beyond the
    allowed numpy ones, read without building anything: torch's own scan of a zip checkpoint, :mod:`pickletools`
    for a bare pickle."""
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in _numpy_array_globals()}
    try:
        data = source.getvalue() if isinstance(source, io.BytesIO) else Path(source).read_bytes()
        if zipfile.is_zipfile(io.BytesIO(data)):
            names = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
        else:
            names = _pickle_globals(data)
    except Exception:  # unreadable beyond the first refusal: the caller calls it corrupt
        return []
    return [n for n in dict.fromkeys(names) if n not in allowed]


def _pickle_globals(data: bytes) -> list[str]:
    """The globals a pickle stream names (GLOBAL, and STACK_GLOBAL after its two strings), never executing it."""
    import pickletools

    names, strings = [], []
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            names.append(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str):
            strings.append(arg)
    return names
