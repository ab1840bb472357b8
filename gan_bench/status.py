"""``status.json``: where a run stands, written atomically at every change of state and every checkpoint.

``{"state": "running" | "finished" | "interrupted" | "diverged" | "failed", "reason": str | null, "iteration": int,
"iterations": int (the target), "checkpoint_iteration": int | null (the iteration of checkpoints/last.pt), "updated":
ISO-8601 UTC, "resume_command": str | null, "pid": int, "host": str}``. ``gan-bench report`` reads it, so a table never
silently rests on runs that did not finish.
"""
from __future__ import annotations

import datetime
import os
import shlex
import socket
from pathlib import Path

from gan_bench.files import atomic_write_json

STATES = ("running", "finished", "interrupted", "diverged", "failed")
FILE = "status.json"


def resume_command(run_dir: Path) -> str:
    """The command that continues the run, ready to paste into a shell (a folder holding brackets or spaces is
    quoted; a sweep job's ``=`` and ``,`` need no quotes there, and ``resume=`` reads the rest of its word as is)."""
    return f"gan-bench train resume={shlex.quote(str(run_dir))}"


def write_status(run_dir: Path, state: str, *, iteration: int, iterations: int, reason: str | None = None,
                 checkpoint_iteration: int | None = None) -> dict:
    """Write the run's status (the resume command is given whenever there is a checkpoint to resume from)."""
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}; one of {', '.join(STATES)}")
    record = {
        "state": state, "reason": reason, "iteration": int(iteration), "iterations": int(iterations),
        "checkpoint_iteration": checkpoint_iteration,
        "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "resume_command": resume_command(run_dir) if checkpoint_iteration is not None and state != "finished" else None,
        "pid": os.getpid(), "host": socket.gethostname(),
    }
    atomic_write_json(Path(run_dir) / FILE, record)
    return record
