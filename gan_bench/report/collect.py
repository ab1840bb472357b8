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
from dataclasses import dataclass, field
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


# -- how each value was measured: one protocol per comparison ------------------------------------------------------
# An evaluation entry records, per metric, how its values were measured (``entry["protocol"][metric]``: sample
# counts, split, weights' sha256 ...); the record's top-level ``protocol`` is the run's training protocol. The report
# compares values measured one way only: by default, each run's values measured as its training measured them;
# with ``--protocol KEY=VALUE``, the values whose protocol has KEY = VALUE.

#: protocol keys naming files of one machine (or copies of facts their sha256 fixes): not part of a protocol's identity
LOCAL_KEYS = frozenset({"classifier", "weights_file", "real_stats", "real_features", "source", "test_accuracy"})
#: the result keys of the built-in metrics (as gan_bench.metrics.registry declares them; a test checks they agree):
#: a key's metric found without importing torch. A plug-in's key is found as the protocol's metric of that name, or
#: as the only metric of its entry's protocol; else the entry's whole protocol is its protocol.
BUILT_IN_KEYS = {"fid": ("fid",), "is": ("is_mean", "is_std"), "kid": ("kid_mean", "kid_std"),
                 "pr": ("precision", "recall"), "fid_classifier": ("fid_classifier",),
                 "modes": ("modes_covered", "high_quality", "mode_kl"),
                 "modes_stacked": ("modes_covered_stacked", "mode_kl_stacked")}
NOT_RESULTS = frozenset({"iteration", "wall_clock_s"})
EVAL_COMMAND = "gan-bench eval"

Protocol = dict[str, dict[str, Any]]  # metric name -> the identity of its protocol (LOCAL_KEYS left out)


def result_keys(entry: dict[str, Any]) -> list[str]:
    """The result keys of an evaluation entry: those holding a number (or null: a metric that was unavailable);
    ``iteration``, ``wall_clock_s`` and the text and objects (generator, protocol, source, checkpoint) are not."""
    return [k for k, v in entry.items() if k not in NOT_RESULTS
            and (v is None or isinstance(v, (int, float)) and not isinstance(v, bool))]


def metric_of(key: str, protocols: Any) -> str | None:
    """The metric of ``protocols`` (``{metric: {...}}``) that produced result key ``key``; None if unknown."""
    if not isinstance(protocols, dict):
        return None
    if key in protocols:
        return key
    found = next((m for m in protocols if key in BUILT_IN_KEYS.get(m, ())), None)
    if found is None and len(protocols) == 1:
        found = next(iter(protocols))
    return found


def identity(protocols: dict[str, Any], metric: str | None) -> Protocol:
    """``{metric: its protocol without LOCAL_KEYS}`` of ``metric``, or of every metric when ``metric`` is None (a
    key whose metric is unknown: the whole protocol of its entry says how it was measured)."""
    chosen = {metric: protocols.get(metric)} if metric is not None else protocols
    return {m: {k: v for k, v in p.items() if k not in LOCAL_KEYS} if isinstance(p, dict) else {"": p}
            for m, p in chosen.items()}


def canonical(value: Any) -> str:
    """``value`` as comparable text: JSON, keys sorted, whole floats as integers; a string that reads as JSON (or as
    Python's True / False / None) as that value, so that "2000" is 2000 and "true" is True."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            value = {"true": True, "false": False, "none": None}.get(text.lower(), text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return json.dumps(value, default=str)


def show(value: Any) -> str:
    """A protocol value as a message shows it."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def training_protocols(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The run's training protocol ``{metric: {...}}``: the record's top-level ``protocol``. An older ``gan-bench
    eval`` (entries with a ``source``, without a ``protocol``) merged its own protocol into that one, so for such a
    record: the protocol of the training's own newest entry that records one, else None (unknown)."""
    evals = metrics.get("eval", [])
    top = metrics.get("protocol")
    if any("source" in e and "protocol" not in e for e in evals):
        own = [e["protocol"] for e in evals if "source" not in e and isinstance(e.get("protocol"), dict)]
        return own[-1] if own else None
    return top if isinstance(top, dict) else None


def measured(metrics: dict[str, Any], entry: dict[str, Any], key: str,
             training: dict[str, Any] | None = None) -> Protocol | None:
    """How ``entry``'s value of ``key`` was measured: its own protocol's identity; for an entry without one that
    training wrote (older gan-bench), the run's training protocol (``training``, default: from ``metrics``; ``{}``:
    none known); None when unknown."""
    own = entry.get("protocol")
    if isinstance(own, dict):
        return identity(own, metric_of(key, own))
    if "source" in entry:
        return None
    training = training_protocols(metrics) if training is None else training
    return identity(training, metric_of(key, training)) if isinstance(training, dict) and training else None


@dataclass
class LeftOut:
    """One value that the report does not compare, and why."""

    run: Path
    entry: int  # its index in the run's ``eval`` list
    generator: str | None
    key: str
    metric: str  # the metric's name (the key when its metric is unknown)
    reason: str  # e.g. "n_fake=2000, the run's training protocol has n_fake=10000; select it with ..."


@dataclass
class Selection:
    """Which values the report compares: ``protocol`` (the ``--protocol`` KEY -> VALUE; empty: each run's training
    protocol), the values left out, and the result keys the runs had before."""

    protocol: dict[str, str]
    left_out: list[LeftOut]
    evaluated: set[str]
    generators: set[Any] = field(default_factory=set)  # the generators the runs' entries name, before
    protocols: dict[int, dict[str, Protocol | None]] = field(default_factory=dict, repr=False)

    def measured(self, entry: dict[str, Any], key: str) -> Protocol | None:
        """How a kept value (an entry of the selected records) was measured; None when unknown."""
        return self.protocols.get(id(entry), {}).get(key)

    def describe(self) -> str:
        if not self.protocol:
            return "values measured as each run's training measured them"
        return "values whose protocol has " + ", ".join(f"{k}={v}" for k, v in self.protocol.items())


_ABSENT = object()  # a key one of two protocols does not have


def _differences(got: Protocol, ref: Protocol) -> list[tuple[str, str, Any, Any]]:
    """``(metric, key, value in got, value in ref)`` where the two differ (``_ABSENT`` where one has no value)."""
    out = []
    for m in [*got, *(m for m in ref if m not in got)]:
        a, b = got.get(m), ref.get(m)
        if a is None or b is None:
            out.append((m, "", a, b))
            continue
        for k in [*a, *(k for k in b if k not in a)]:
            va, vb = a.get(k, _ABSENT), b.get(k, _ABSENT)
            if va is _ABSENT or vb is _ABSENT or canonical(va) != canonical(vb):
                out.append((m, k, va, vb))
    return out


def _setting(key: str, value: Any) -> str:
    return f"no {key}" if value is _ABSENT else f"{key}={show(value)}"


def _mismatch(got: Protocol, ref: Protocol, whose: str) -> str:
    """``n_fake=2000, the run's training protocol has n_fake=10000; select it with --protocol n_fake=2000``."""
    diffs = _differences(got, ref)
    settings = [(m, k, a, b) for m, k, a, b in diffs if k]
    if not settings:
        return f"its protocol records the metrics {', '.join(got)}, {whose} {', '.join(ref) or 'none'}"
    several = len({m for m, *_ in settings}) > 1
    name = (lambda m, k: f"{m}.{k}") if several else (lambda m, k: k)
    shown = settings[:3]
    more = f" (and {len(settings) - 3} more)" if len(settings) > 3 else ""
    text = (f"{', '.join(_setting(name(m, k), a) for m, k, a, _ in shown)}{more}, "
            f"{whose} has {', '.join(_setting(name(m, k), b) for m, k, _, b in shown)}")
    picks = [f"--protocol {k}={show(a)}" for _, k, a, _ in shown if a is not _ABSENT and is_scalar(a)
             and " " not in show(a)]
    return text + (f"; select it with {' '.join(dict.fromkeys(picks))}" if picks else "")


def _parse_selectors(selectors: dict[str, str], candidates: list[tuple]) -> None:
    """An error for a ``--protocol`` KEY that no value's protocol has; a warning for a VALUE that none has."""
    for key, value in selectors.items():
        values = {canonical(sub[key]): show(sub[key]) for c in candidates if c[4] is not None
                  for sub in c[4].values() if key in sub}
        if values and canonical(value) not in values:
            warn(f"--protocol {key}={value}: no evaluation was measured so (their {key}: "
                 f"{', '.join(sorted(values.values(), key=natural_key))})")
        if values:
            continue
        if key in LOCAL_KEYS:
            raise GanBenchError(f"--protocol {key}={value}: {key} names a file on one machine and is not part of a "
                                "protocol's identity; select by its sha256 (weights_sha256, classifier_sha256) instead")
        keys = sorted({k for c in candidates if c[4] is not None for sub in c[4].values() for k in sub})
        raise GanBenchError(f"--protocol {key}={value}: no evaluation's protocol has {key} "
                            f"(their keys: {', '.join(keys) or 'none recorded'})")


def _selected(p: Protocol | None, applicable: list[tuple[str, str]], unrecorded: str | None) -> str | None:
    """Why a value measured as ``p`` is left out by the ``--protocol`` selectors ``applicable``; None: it is kept."""
    asked = " ".join(f"--protocol {k}={v}" for k, v in applicable)
    if p is None:
        return f"{unrecorded or 'no recorded protocol'}, so not selectable with {asked}"
    for key, value in applicable:
        subs = [sub for sub in p.values() if key in sub]
        if not subs:
            return f"its protocol has no {key}, which {asked} asks for"
        wrong = [sub[key] for sub in subs if canonical(sub[key]) != canonical(value)]
        if wrong:
            return f"{key}={show(wrong[0])}, not {value} as {asked} asks"
    return None


def _candidates(runs: Sequence[RunRecord], trainings: list) -> tuple[list[tuple], set[str], dict]:
    """Every value of every run: (run index, entry index, key, metric name or None, protocol or None, kind), the
    keys evaluated, and per (run, key) its first value's own protocol."""
    candidates, evaluated, first = [], set(), {}
    for r, run in enumerate(runs):
        for i, entry in enumerate(run.metrics.get("eval", [])):
            for key in result_keys(entry):
                evaluated.add(key)
                if entry[key] is None:
                    continue
                own = entry.get("protocol")
                kind = "own" if isinstance(own, dict) else "unrecorded" if "source" in entry else "training"
                metric = metric_of(key, own if kind == "own" else trainings[r])
                p = measured(run.metrics, entry, key, trainings[r] if trainings[r] is not None else {})
                if kind == "own":
                    first.setdefault((r, key), p)
                candidates.append((r, i, key, metric, p, kind))
    return candidates, evaluated, first


def select_protocol(runs: Sequence[RunRecord], selectors: dict[str, str] | None = None
                    ) -> tuple[list[RunRecord], Selection]:
    """Copies of ``runs`` whose evaluation entries hold only the values measured under one protocol, and what was
    left out and why (the records themselves are not changed).

    Default (no ``selectors``): per run and result key, the values measured as the run's training measured that
    metric (:func:`training_protocols`; for a metric its training did not evaluate, as the run's first evaluation of
    it with a recorded protocol); an entry without a ``protocol`` counts as the training's when it has no ``source``
    (written by training, older gan-bench) and is left out when it has one (appended by an older ``gan-bench eval``
    without a record of how). With ``selectors`` (KEY -> VALUE): for every result key whose values' protocols have
    KEY somewhere, the values whose protocol has KEY = VALUE (compared as :func:`canonical` text) for every one of
    its metrics that has KEY; the other result keys as by default. An error for a KEY that no protocol has."""
    selectors = dict(selectors or {})
    trainings = [training_protocols(run.metrics) for run in runs]
    candidates, evaluated, first = _candidates(runs, trainings)
    if selectors:
        _parse_selectors(selectors, candidates)
    having = {(c[2], k) for c in candidates if c[4] is not None for sub in c[4].values() for k in sub}
    applicable = {key: [(k, v) for k, v in selectors.items() if (key, k) in having]
                  for key in {c[2] for c in candidates}}

    def reference(r: int, key: str, metric: str | None) -> tuple[Protocol | None, str]:
        """How run ``r``'s values of ``key`` are to have been measured by default, and whose protocol that is."""
        training = trainings[r]
        if training and (metric is None or metric in training):
            return identity(training, metric), "the run's training protocol"
        if training is not None:
            name = metric or key
            return first.get((r, key)), f"the run's first {name} evaluation (its training did not evaluate {name})"
        return None, "the run's training protocol"

    drop: dict[tuple[int, int], list[str]] = {}
    kept: dict[tuple[int, int], dict[str, Protocol | None]] = {}
    left_out = []
    for r, i, key, metric, p, kind in candidates:
        entry = runs[r].metrics["eval"][i]
        name = metric or key
        unrecorded = (f"appended by `{entry['source']}` without a record of how it was measured (an older "
                      f"{EVAL_COMMAND})" if kind == "unrecorded" else None)
        why = None
        if applicable[key]:
            why = _selected(p, applicable[key], unrecorded)
        elif kind == "unrecorded":
            why = unrecorded
        elif kind == "own":
            ref, whose = reference(r, key, metric)
            if ref is None and "source" in entry:
                why = (f"the run's training protocol is not recorded, so this value appended by `{entry['source']}` "
                       "cannot be compared with it")
            elif ref is not None and canonical(p) != canonical(ref):
                why = _mismatch(p, ref, whose)
        if why is None:
            kept.setdefault((r, i), {})[key] = p
        else:
            drop.setdefault((r, i), []).append(key)
            left_out.append(LeftOut(runs[r].path, i, entry.get("generator"), key, name, why))
    out, protocols = [], {}
    for r, run in enumerate(runs):
        evals = []
        for i, entry in enumerate(run.metrics.get("eval", [])):
            copy = {k: v for k, v in entry.items() if k not in drop.get((r, i), ())}
            if (r, i) in drop and not result_keys(copy):
                continue  # nothing of it is compared
            evals.append(copy)
            protocols[id(copy)] = kept.get((r, i), {})
        metrics = {**run.metrics, "eval": evals} if "eval" in run.metrics else run.metrics
        out.append(RunRecord(run.path, run.overrides, metrics))
    generators = {e.get("generator") for run in runs for e in run.metrics.get("eval", [])}
    return out, Selection(selectors, left_out, evaluated, generators, protocols)
