"""The one way gan-bench writes a file: to a temporary file in the same folder, flushed and fsynced, then renamed.

A crash or a kill in the middle of a write never leaves a truncated file under the final name; a failed write
(e.g. a full disk) removes its temporary file and raises :class:`WriteError`, naming the file, while the previous
version of the file stays intact. Temporary files are named ``.<name>.<random>.tmp`` so that
:func:`remove_stale_temporaries` can clear the ones a kill left behind.
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from gan_bench.errors import GanBenchError

TEMP_SUFFIX = ".tmp"


class WriteError(GanBenchError):
    """A file could not be written (disk full, permissions, ...); the previous version of the file is intact."""


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None],
                 before_rename: Callable[[Path], None] | None = None) -> Path:
    """``write(f)`` into a temporary file next to ``path``, fsync it, then rename it over ``path`` (atomic).
    ``before_rename(tmp)`` runs in between (the fault suite's hook)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results should be readable like any other output
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename(Path(tmp))
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        why = "no space left on the device" if err.errno == errno.ENOSPC else (err.strerror or str(err))
        raise WriteError(f"{why} while writing {path}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every file system allows it)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by None, so that it is valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return strict_json(obj.item())
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Strict JSON (no NaN / Infinity tokens: non-finite numbers are written as null), indented, keys sorted."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=True, allow_nan=False, default=str) + "\n"
    return atomic_write_bytes(path, text.encode())


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` that a killed process left in ``folder`` (not recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def cache_dir(configured: str | None = None) -> Path:
    """gan-bench's cache (real statistics, reference values, classifiers trained on demand): ``configured``
    (``eval.cache_dir``) when given, else ``$XDG_CACHE_HOME/gan_bench``, else ``~/.cache/gan_bench``."""
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan_bench"
