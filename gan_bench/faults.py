"""Fault injection for the fault suite (tests/test_faults.py): a run told, through the environment, to break itself
at a chosen iteration, so that every recovery path is exercised by a real process rather than by a mock.

``GAN_BENCH_FAULT=KIND@ITERATION[,KIND@ITERATION...]`` with KIND one of

* ``nan``: after that iteration's step, the generator's first parameter becomes NaN (once per process);
* ``write_error``: the checkpoint written at that iteration fails as a full disk would (ENOSPC);
* ``pause_in_write``: the checkpoint written at that iteration stops after its temporary file is complete and before
  the rename, creates ``<temporary>.paused`` and sleeps, so that a test can kill the process mid-write;
* ``wait_for_signal``: after that iteration's step the run waits (up to 120 s) until a signal arrives, so that a
  test can stop a short run mid-way without racing it to its end.

Unset (the normal case) it does nothing.
"""
from __future__ import annotations

import errno
import functools
import os
import time
from pathlib import Path
from typing import Any

import torch

KINDS = ("nan", "write_error", "pause_in_write", "wait_for_signal")
_fired: set[str] = set()


def planned(kind: str) -> int | None:
    """The iteration at which ``kind`` is to happen, or None."""
    return _plan(os.environ.get("GAN_BENCH_FAULT", "")).get(kind)


@functools.lru_cache(maxsize=8)
def _plan(text: str) -> dict[str, int]:
    """``KIND@ITERATION,...`` parsed once (the training step asks after every iteration); the first entry per kind."""
    plan: dict[str, int] = {}
    for item in text.split(","):
        name, _, at = item.strip().partition("@")
        if at.isdigit():
            plan.setdefault(name, int(at))
    return plan


def inject_nan(model: torch.nn.Module, iteration: int) -> None:
    if planned("nan") == iteration and "nan" not in _fired:
        _fired.add("nan")
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))


def wait_for_signal(iteration: int, signals: Any) -> None:
    """Called after each step with the run's :class:`~gan_bench.guard.SignalGuard` (its ``signum`` is set by a
    signal)."""
    if planned("wait_for_signal") == iteration:
        deadline = time.monotonic() + 120
        while signals.signum is None and time.monotonic() < deadline:
            time.sleep(0.02)


def before_rename(tmp: Path, iteration: int | None) -> None:
    """Called by a checkpoint write between its complete temporary file and the rename."""
    if iteration is None:
        return
    if planned("write_error") == iteration:
        raise OSError(errno.ENOSPC, "No space left on device")
    if planned("pause_in_write") == iteration:
        Path(f"{tmp}.paused").touch()
        time.sleep(600)
