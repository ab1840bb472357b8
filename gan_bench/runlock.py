"""One process per run folder: an exclusive OS lock on ``RUN/.gan-bench.lock`` for as long as a process trains,
resumes or evaluates into the folder.

``fcntl.flock`` on the lock file, taken without waiting: a second process (a second ``gan-bench train`` into the same
``hydra.run.dir``, a ``resume`` or ``eval`` of a run still training, a sweep relaunched while it runs) is refused in
one line naming the process and host that hold it, before it writes anything. The OS releases the lock when its
process ends, however it ends (kill -9 included), so a lock never outlives its holder and never blocks a later
resume; a SLURM requeue takes the lock once the preempted job is gone. Under torchrun rank 0 holds it. The holder
writes its pid, host, start time and command into the file (for the refusal's message); the empty file that stays
behind holds nothing.

Within one process the lock is re-entrant: the launcher takes it before Hydra creates the run's files and the job
takes it again around training.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from gan_bench.errors import GanBenchError

LOCK_FILE = ".gan-bench.lock"
_held: dict[Path, list[int]] = {}  # resolved run folder -> [file descriptor, depth, 1 if this process made the file]


class RunLocked(GanBenchError):
    """Another process holds the run folder."""


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the file: 'process PID on HOST (since ..., `command`)'."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    since = f"since {info['since']}, " if info.get("since") else ""
    return f"process {info['pid']} on {info.get('host', '?')} ({since}`{info.get('command', '?')}`)"


def acquire(run_dir: Path, create: bool = False) -> None:
    """Take the run folder's lock (creating the lock file, and with ``create`` the folder) or raise
    :class:`RunLocked`."""
    import fcntl

    run_dir = Path(run_dir)
    key = run_dir.resolve()
    if key in _held:
        _held[key][1] += 1
        return
    if create:
        run_dir.mkdir(parents=True, exist_ok=True)
    made = not (run_dir / LOCK_FILE).exists()
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise RunLocked(f"cannot write into {run_dir} ({err.strerror or err}); nothing was written") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunLocked(f"{run_dir} is in use by {holder}: one process per run folder — wait for it to end or stop "
                        "it; nothing was written") from None
    except OSError as err:  # a file system without flock: say so rather than run unprotected silently
        os.close(fd)
        raise RunLocked(f"cannot lock {run_dir / LOCK_FILE} ({err.strerror or err}); gan-bench allows one process per "
                        "run folder and needs a file system with flock") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["gan-bench", *sys.argv[1:]])[:500]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _held[key] = [fd, 1, int(made)]


def release(run_dir: Path, discard: bool = False) -> None:
    """Let go of the lock (the last release of this process clears the holder's record and closes the file);
    ``discard``: a process that refuses to work in the folder also removes the lock file if it made it."""
    key = Path(run_dir).resolve()
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[key]
    fd = entry[0]
    try:
        os.ftruncate(fd, 0)
        if discard and entry[2]:
            (Path(run_dir) / LOCK_FILE).unlink()
    except OSError:
        pass
    os.close(fd)  # closing the descriptor releases the flock


def held(run_dir: Path) -> bool:
    return Path(run_dir).resolve() in _held


@contextlib.contextmanager
def hold(run_dir: Path, create: bool = False) -> Iterator[None]:
    acquire(run_dir, create)
    try:
        yield
    finally:
        release(run_dir)
