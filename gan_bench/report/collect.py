"""Finding the runs below some paths, and what became of every job a Hydra sweep launched.

A *job* is one run folder found on disk, or one override set that a sweep's ``multirun.yaml`` says Hydra's basic
sweeper launched (its comma / ``range()`` sweeps expanded with Hydra's own override parser). Its state comes from
the run's ``status.json`` (written by the training loop)::

    {"state": "running" | "finished" | "interrupted" | "diverged" | "failed", "reason": str | null,
     "iteration": int, "iterations": int, "updated": ISO-8601 UTC, "resume_command": str | null,
     "pid": int, "host": str}

A ``running`` run whose process no longer exists on this host is *interrupted* (stale). Runs made before status.json
existed are *finished* when their metrics.json reached the configured number of iterations. A launched job without a
run folder, or whose folder holds no readable metrics, is *missing*. Only finished runs enter the statistics.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from gan_bench import job_names
from gan_bench.errors import GanBenchError

STATES = ("running", "finished", "interrupted", "diverged", "failed")
# the order of the jobs listed under the table (everything but "finished")
LISTED_STATES = ("failed", "diverged", "interrupted", "running", "missing")
RUN_FILES = ("metrics.json", "status.json")


@dataclass
class RunRecord:
    """One run: its folder, its launch overrides (``key -> value``) and its parsed metrics.json."""

    path: Path
    overrides: dict[str, str]
    metrics: dict[str, Any]


@dataclass
class Job:
    """One launched job or run folder: its record (metrics ``{}`` if none are readable) and what became of it."""

    record: RunRecord
    state: str  # one of STATES, or "missing"
    reason: str | None = None
    iteration: int | None = None
    iterations: int | None = None
    number: int | None = None  # Hydra's job number within its sweep, where known
    resume_command: str | None = None
    has_folder: bool = True

    @property
    def finished(self) -> bool:
        return self.state == "finished"


@dataclass
class Collection:
    """Every job found below the paths of one report, in natural order (sweep by sweep, job by job)."""

    jobs: list[Job]

    @property
    def runs(self) -> list[RunRecord]:
        """The finished runs: the ones the statistics rest on."""
        return [j.record for j in self.jobs if j.finished]

    @property
    def others(self) -> list[Job]:
        return [j for j in self.jobs if not j.finished]

    def summary(self) -> str:
        """``"4 jobs: 2 finished, 1 failed, 1 missing"``."""
        counts = {s: sum(j.state == s for j in self.jobs) for s in ("finished", *LISTED_STATES)}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        return f"{len(self.jobs)} job{'s' * (len(self.jobs) != 1)}: {', '.join(parts)}"


def warn(msg: str) -> None:
    print(f"gan-bench: warning: {msg}", file=sys.stderr)


def number(value: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / NaN / inf values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def natural_key(text: str) -> tuple:
    """Sort key putting numbers in numeric order: d2 < d16, 0.001 < 0.01, job 9 < job 10."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)))


# -- one run folder -----------------------------------------------------------------------------------------------
def parse_overrides(lines: Sequence[str]) -> dict[str, str]:
    """Hydra's ``.hydra/overrides.yaml`` entries ``[+|++|~]key=value`` as ``{key: value}``; ``hydra.*`` dropped."""
    out: dict[str, str] = {}
    for line in lines:
        key, _, value = str(line).partition("=")
        key = key.lstrip("+~")
        if not key.startswith("hydra."):
            out[key] = value
    return out


def _metrics_problem(m: Any) -> str | None:
    """Why a parsed metrics.json cannot be a gan-bench run record, or None if its shape is usable."""
    if not isinstance(m, dict):
        return "not a JSON object"
    evals = m.get("eval", [])
    if not isinstance(evals, list) or not all(isinstance(e, dict) for e in evals):
        return "'eval' is not a list of objects"
    if any(number(e.get("iteration")) is None for e in evals):
        return "an 'eval' entry has no numeric 'iteration'"
    for key in ("cost", "config"):
        if not isinstance(m.get(key, {}), dict):
            return f"'{key}' is not an object"
    return None


def load_metrics(metrics_file: Path) -> dict[str, Any] | None:
    """A parsed metrics.json; None (with a warning naming the file) if it is unreadable or not a run record."""
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        warn(f"skipping corrupt {metrics_file}: {err}")
        return None
    problem = _metrics_problem(metrics)
    if problem:
        warn(f"skipping corrupt {metrics_file}: {problem}")
        return None
    return metrics


def read_overrides(run_dir: Path) -> list[str] | None:
    """The run's ``.hydra/overrides.yaml`` lines ([] if it has none); None (with a warning) if it is corrupt."""
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        return []
    try:
        lines = yaml.safe_load(overrides_file.read_text()) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        warn(f"skipping {run_dir}: corrupt {overrides_file}: {err}")
        return None
    if not isinstance(lines, list):
        warn(f"skipping {run_dir}: {overrides_file} is not a list of key=value strings")
        return None
    return [str(x) for x in lines]


def load_run(metrics_file: Path) -> RunRecord | None:
    """The run holding ``metrics_file``; None (with a warning naming the file) if it or its overrides are corrupt."""
    metrics = load_metrics(metrics_file)
    lines = read_overrides(metrics_file.parent) if metrics is not None else None
    if metrics is None or lines is None:
        return None
    return RunRecord(metrics_file.parent, parse_overrides(lines), metrics)


def _status_problem(s: Any) -> str | None:
    if not isinstance(s, dict):
        return "not a JSON object"
    if s.get("state") not in STATES:
        return f"'state' is {s.get('state')!r}, not one of {', '.join(STATES)}"
    types = {"reason": (str, type(None)), "iteration": (int,), "iterations": (int,), "pid": (int,), "host": (str,),
             "updated": (str,), "resume_command": (str, type(None))}
    for key, allowed in types.items():
        if key in s and (not isinstance(s[key], allowed) or isinstance(s[key], bool)):
            return f"'{key}' is {s[key]!r}"
    return None


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's status.json, or None if it has none (older runs) or it is unreadable (with a warning)."""
    status_file = run_dir / "status.json"
    if not status_file.is_file():
        return None
    try:
        status = json.loads(status_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        warn(f"ignoring corrupt {status_file}: {err}")
        return None
    problem = _status_problem(status)
    if problem:
        warn(f"ignoring corrupt {status_file}: {problem}")
        return None
    return status


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists on this machine (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _from_status(job: Job, status: dict[str, Any], metrics_note: str | None) -> None:
    """Fill ``job``'s state from its status.json (a dead ``running`` process on this host: interrupted)."""
    job.state, job.reason = status["state"], status.get("reason")
    job.iteration, job.iterations = status.get("iteration"), status.get("iterations")
    job.resume_command = status.get("resume_command")
    host, pid = status.get("host"), status.get("pid")
    if job.state == "running" and host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        job.state = "interrupted"
        job.reason = (f"stale: status.json says running, but process {pid} is gone from {host} "
                      f"(last update {status.get('updated', '?')})")
    elif job.state == "running" and host not in (None, socket.gethostname()):
        job.reason = job.reason or f"on host {host} (process {pid}; not checked from here)"
    if job.state == "finished" and metrics_note:
        job.state, job.reason = "missing", f"status.json says finished, but {metrics_note}"


def _from_metrics(job: Job, metrics: dict[str, Any] | None, metrics_note: str | None) -> None:
    """A run without status.json: finished if its metrics.json reached the configured iterations."""
    if metrics is None:
        job.state, job.reason = "missing", metrics_note
        return
    done = metrics.get("iterations")
    train = metrics.get("config", {}).get("train")
    target = train.get("iterations") if isinstance(train, dict) else None
    job.iteration = done if isinstance(done, int) else None
    job.iterations = target if isinstance(target, int) else None
    if job.iteration is not None and job.iterations is not None and job.iteration < job.iterations:
        job.state = "interrupted"
        job.reason = f"no status.json; metrics.json stops at iteration {job.iteration} of {job.iterations}"
    else:
        job.state = "finished"


def job_from_folder(run_dir: Path, metrics_file: Path | None = None, lines: list[str] | None = None,
                    job_number: int | None = None) -> Job:
    """What became of the run in ``run_dir``: its status.json, else its metrics.json, decides."""
    metrics_file = metrics_file or run_dir / "metrics.json"
    if lines is None:
        lines = read_overrides(run_dir)
    metrics, note = None, None
    if lines is None:
        note = "its .hydra/overrides.yaml is unreadable"
    elif not metrics_file.is_file():
        note = "the run folder holds no metrics.json"
    else:
        metrics = load_metrics(metrics_file)
        note = None if metrics is not None else "its metrics.json is unreadable"
    job = Job(RunRecord(run_dir, parse_overrides(lines or []), metrics or {}), "missing", number=job_number)
    status = read_status(run_dir)
    if status is not None:
        _from_status(job, status, note)
    else:
        _from_metrics(job, metrics, note)
    return job


# -- a sweep's launched jobs --------------------------------------------------------------------------------------
def expand_sweep(args: Sequence[str]) -> list[list[str]]:
    """The override lists of the jobs Hydra's basic sweeper launches for ``args`` (its cartesian product of the
    comma / ``range()`` sweeps, parsed by Hydra's own override parser), in job-number order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    per_key: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(list(args)):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ValueError(f"the basic sweeper cannot sweep {override.input_line}")
            per_key[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            per_key[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(combo) for combo in itertools.product(*per_key.values())]


def read_multirun(sweep_dir: Path) -> tuple[list[list[str]], list[str] | None] | None:
    """``(launched override lists, their job folders' names)`` from ``sweep_dir/multirun.yaml`` (names None for a
    ``hydra.sweep.subdir`` pattern of your own); None where the file does not say (no ``hydra.overrides.task``) or
    another sweeper launched the jobs (with a warning)."""
    path = sweep_dir / "multirun.yaml"
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise GanBenchError(f"cannot read {path}: {str(err).splitlines()[0]}") from None
    hydra = cfg.get("hydra") if isinstance(cfg, dict) else None
    overrides = hydra.get("overrides") if isinstance(hydra, dict) else None
    task = overrides.get("task") if isinstance(overrides, dict) else None
    if not isinstance(task, list):
        return None
    sweeper = hydra.get("sweeper") if isinstance(hydra.get("sweeper"), dict) else {}
    target = str(sweeper.get("_target_", ""))
    if target and not target.endswith(".BasicSweeper"):
        warn(f"{path}: jobs launched by {target} cannot be listed; only the run folders found are counted")
        return None
    params = sweeper.get("params") if isinstance(sweeper.get("params"), dict) else {}
    try:
        launched = expand_sweep([f"{k}={v}" for k, v in params.items()] + [str(t) for t in task])
    except Exception as err:
        warn(f"{path}: cannot expand the sweep ({str(err).splitlines()[0]}); only the run folders found are counted")
        return None
    sweep = hydra.get("sweep") if isinstance(hydra.get("sweep"), dict) else {}
    return launched, job_folder_names(launched, sweep.get("subdir"), job_names.recorded_shared_keys(hydra))


def job_folder_names(launched: list[list[str]], subdir: Any, shared: list[str]) -> list[str] | None:
    """The folder names Hydra gave the launched jobs: gan-bench's ``NUM_OVERRIDES`` (:mod:`gan_bench.job_names`),
    Hydra's plain ``NUM``; None for a pattern of your own."""
    if subdir in (None, "${hydra.job.num}"):
        return [str(i) for i in range(len(launched))]
    if subdir == job_names.SUBDIR:
        return [job_names.job_dir(i, lines, shared) for i, lines in enumerate(launched)]
    return None


def _match(launched: list[list[str]], folders: list[Path], sweep_dir: Path,
           names: list[str] | None) -> tuple[dict[int, Path], list[Path]]:
    """Launched job number -> its run folder (same overrides.yaml; else the folder of ``sweep_dir`` with the job's
    folder name, ``names``), and the folders matching no launched job."""
    queue: dict[tuple[str, ...], list[int]] = {}
    for i, lines in enumerate(launched):
        queue.setdefault(tuple(lines), []).append(i)
    matched: dict[int, Path] = {}
    rest = []
    for folder in folders:
        lines = read_overrides_quiet(folder)
        free = queue.get(tuple(lines), []) if lines is not None else []
        if free:
            matched[free.pop(0)] = folder
        else:
            rest.append(folder)
    number = {name: i for i, name in enumerate(names or [])}
    extra = []
    for folder in rest:
        i = number.get(folder.name, -1) if folder.parent == sweep_dir else -1
        if i >= 0 and i not in matched:
            matched[i] = folder
        else:
            extra.append(folder)
    return matched, extra


def read_overrides_quiet(run_dir: Path) -> list[str] | None:
    try:
        lines = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return [str(x) for x in lines] if isinstance(lines, list) else None


def sweep_jobs(sweep_dir: Path, folders: list[Path]) -> list[Job]:
    """Every job of the sweep in ``sweep_dir``: the launched ones in job order (missing where no folder holds
    them), then run folders that no launched job accounts for."""
    multirun = read_multirun(sweep_dir)
    if multirun is None:
        return [job_from_folder(f) for f in folders]
    launched, names = multirun
    matched, extra = _match(launched, folders, sweep_dir, names)
    jobs = []
    for i, lines in enumerate(launched):
        if i in matched:
            jobs.append(job_from_folder(matched[i], job_number=i))
            continue
        folder = sweep_dir / names[i] if names else sweep_dir
        reason = "launched, but its run folder does not exist" if names else "launched, but no run folder found"
        jobs.append(Job(RunRecord(folder, parse_overrides(lines), {}), "missing", reason, number=i,
                        has_folder=False))
    return jobs + [job_from_folder(f) for f in extra]


# -- everything below some paths ----------------------------------------------------------------------------------
def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """Run folders (holding metrics.json, status.json or .hydra/overrides.yaml) and sweep folders (holding
    multirun.yaml) at or below ``root``, in natural path order."""
    runs, sweeps = [], []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".hydra"]
        here = Path(folder)
        if "multirun.yaml" in files:
            sweeps.append(here)
        elif any(f in files for f in RUN_FILES) or (here / ".hydra" / "overrides.yaml").is_file():
            runs.append(here)
    return sorted(runs, key=_path_key), sorted(sweeps, key=_path_key)


def _path_key(path: Path) -> tuple:
    return tuple(natural_key(part) for part in path.parts)


def _jobs_below(path: Path) -> list[Job]:
    if path.is_file():
        if path.name == "multirun.yaml":
            return _jobs_below(path.parent)
        return [job_from_folder(path.parent, metrics_file=path)]
    runs, sweeps = _walk(path)
    owned: dict[Path, list[Path]] = {s: [] for s in sweeps}
    loose = []
    for run in runs:
        owner = max((s for s in sweeps if s in run.parents), key=lambda s: len(s.parts), default=None)
        (owned[owner] if owner is not None else loose).append(run)
    blocks = [(s, sweep_jobs(s, owned[s])) for s in sweeps] + [(run, [job_from_folder(run)]) for run in loose]
    return [job for _, block in sorted(blocks, key=lambda b: _path_key(b[0])) for job in block]


def collect(paths: Sequence[str | Path]) -> Collection:
    """Every job at or below ``paths`` (each run folder once); an error for a path that does not exist or holds
    no run at all."""
    jobs: list[Job] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise GanBenchError(f"{path} does not exist")
        found = _jobs_below(path)
        if not found:
            raise GanBenchError(f"no run found below {path} (no metrics.json in it or its sub-folders)")
        for job in found:
            key = job.record.path.resolve() if job.has_folder else None
            if key is not None and key in seen:
                continue
            if key is not None:
                seen.add(key)
            jobs.append(job)
    return Collection(jobs)


def find_runs(paths: Sequence[str | Path]) -> list[RunRecord]:
    """The finished runs at or below ``paths``; an error if there is none."""
    collection = collect(paths)
    if not collection.runs:
        raise GanBenchError(f"no finished run found below {', '.join(map(str, paths))} ({collection.summary()})")
    return collection.runs
