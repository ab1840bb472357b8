"""``gan-bench train``: check everything before anything is written, then hand the run (or sweep) to Hydra.

* A single run is composed and checked here first (:func:`gan_bench.config.check_config`), its folder resolved and
  refused if it already holds a run — so a bad config or a refused relaunch writes nothing at all. Only then does
  Hydra create the folder and run the job.
* ``resume=RUN`` (or ``hydra.run.dir=RUN resume=true``) continues a run from its checkpoint with the configuration
  stored IN the checkpoint; only the keys a resume may change (:data:`gan_bench.checkpoint.RESUMABLE`) can be
  overridden. Nothing a later launch could have rewritten (``.hydra/``) is read.
* A sweep (``-m``) runs every job; a job that fails is recorded and the others go on; the command exits non-zero at
  the end, naming the failed jobs.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from gan_bench import job_names, runlock  # job_names: ${gan_bench.job_dir:}, also in a launcher's workers
from gan_bench.errors import CheckpointError, ConfigError, GanBenchError

#: files and folders that mark a folder as holding a run (or a launch's record)
RUN_MARKERS = (".hydra", "checkpoints", "metrics.json", "status.json", "samples")
HYDRA_FLAGS = ("--cfg", "-c", "--info", "-i", "--resolve", "--package", "-p", "--hydra-help", "--version",
               "--shell-completion", "-sc", "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
               "--experimental-rerun")


def conf_dir() -> str:
    """conf/ of a source checkout if there is one next to the package, else the copy installed as gan_bench.conf."""
    repo_conf = Path(__file__).resolve().parent.parent / "conf"
    if (repo_conf / "config.yaml").is_file():
        return str(repo_conf)
    return "pkg://gan_bench.conf"


def quoted(value: Any) -> str:
    """``value`` as a quoted value of a Hydra override: a folder whose name holds ``=``, ``,``, spaces or brackets
    (a sweep job's ``0_aggregation=hv,train.seed=1``) passes as one string. Hydra's grammar: a quote is escaped
    with a backslash, and so are the backslashes before a quote or at the end."""
    text = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", str(value))
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, text) + "'"


def with_user_conf(args: list[str]) -> list[str]:
    """``args`` plus ``hydra.searchpath=[file://CWD/conf]`` when the working folder has a ``conf/`` of its own (your
    own options, e.g. ``conf/model/discriminator/my_d.yaml``), unless a search path is given already. gan-bench's own
    options come first in the search path, so a file of yours never replaces one of them; new names are added."""
    user = Path.cwd() / "conf"
    if not user.is_dir() or str(user.resolve()) == str(Path(conf_dir()).resolve()):
        return list(args)
    if any(a.lstrip("+").startswith("hydra.searchpath=") for a in args):
        return list(args)
    return [*args, f"hydra.searchpath=[{quoted(f'file://{user.resolve()}')}]"]


# -- composing ----------------------------------------------------------------------------------------------------
def compose_config(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """The config ``gan-bench train OVERRIDES`` runs with (Hydra's compose API); errors as one ConfigError line."""
    from hydra import compose, initialize_config_dir, initialize_config_module

    from gan_bench.config import register_configs

    overrides = with_custom_targets(with_user_conf(overrides))
    check_renamed(overrides)
    register_configs()
    source = conf_dir()
    ctx = (initialize_config_module("gan_bench.conf", version_base="1.3") if source.startswith("pkg://")
           else initialize_config_dir(config_dir=source, version_base="1.3"))
    try:
        with ctx:
            return compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)
    except Exception as err:  # Hydra and OmegaConf raise many types; all are a bad config here
        raise ConfigError(composition_message(err)) from None


#: component paths whose group has a ``custom`` option (an empty node for a class of your own)
CUSTOM_GROUPS = {"model.generator": "model/generator", "model.discriminator": "model/discriminator",
                 "discriminators.projection": "discriminators/projection", "aggregation": "aggregation",
                 "loss": "loss", "optimizer.rule": "optimizer/rule", "optimizer.base": "optimizer/base"}


def with_custom_targets(args: list[str]) -> list[str]:
    """``model.discriminator._target_=my_pkg.MyD`` replaces the whole node: the group's ``custom`` option (no keys of
    the option it replaces) is selected first, unless the command line chooses the group's option itself."""
    out = list(args)
    for a in args:
        key = a.lstrip("+").split("=", 1)[0]
        path = key[: -len("._target_")] if key.endswith("._target_") else None
        group = CUSTOM_GROUPS.get(path or "")
        if group and not any(o.split("=", 1)[0] == group for o in args):
            out.insert(out.index(a), f"{group}=custom")
    return out


def check_renamed(overrides: list[str]) -> None:
    """An override of a key that an earlier version used gets one line naming the new key."""
    from gan_bench.config import renamed_message

    for o in overrides:
        key = o.lstrip("+~").split("=", 1)[0]
        msg = renamed_message(key)
        if msg:
            raise ConfigError(msg)
        if key == "discriminators.projection" and "=" in o:
            raise ConfigError(f"discriminators.projection is a config group: use discriminators/projection="
                              f"{o.split('=', 1)[1]}")


def _chain(err: BaseException) -> list[BaseException]:
    out = []
    while err is not None and err not in out:
        out.append(err)
        err = err.__cause__ or err.__context__
    return out


def composition_message(err: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors as one line naming the key, read from the exceptions'
    own fields (OmegaConf's ``full_key`` and ``object_type``, Hydra's ``MissingConfigException.options``)."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    chain = _chain(err)
    for e in chain:
        if isinstance(e, OverrideParseException):
            return (f"cannot read the override {e.override}: {str(e.message).splitlines()[0]} (a value holding "
                    """=, a comma, spaces or brackets needs quotes: 'KEY="VALUE"')""")
        full_key = getattr(e, "full_key", None)
        if isinstance(e, (ConfigAttributeError, ConfigKeyError)) and full_key:
            return _unknown_key_message(str(full_key), getattr(e, "object_type", None))
        if isinstance(e, ValidationError) and full_key:
            return f"{full_key}: {getattr(e, 'msg', str(e)).splitlines()[0]}"
        if isinstance(e, MissingConfigException):
            first = str(e).strip().splitlines()[0].replace("In 'config': ", "")
            return first + (f"; available: {', '.join(e.options)}" if e.options else "")
    return str(chain[0]).strip().splitlines()[0] if str(chain[0]).strip() else type(chain[0]).__name__


def _unknown_key_message(full_key: str, object_type: Any) -> str:
    from gan_bench.config import renamed_message, schema_owner

    owner = schema_owner(object_type.__name__) if isinstance(object_type, type) else None
    if renamed_message(full_key):
        return renamed_message(full_key)
    if owner is None:
        return f"{full_key} is not a config key"
    what, keys, kind = owner
    if kind == "section":
        return f"{full_key} is not a config key; valid keys of {what}: {keys}"
    return f"{full_key} does not apply to {what} (its keys: {keys})"


# -- the run folder -----------------------------------------------------------------------------------------------
def holds_run(folder: Path) -> list[str]:
    """What in ``folder`` marks it as holding a run (or a launch's record); empty when it is new or unrelated."""
    if not folder.is_dir():
        return []
    found = [m for m in RUN_MARKERS if (folder / m).exists()]
    return found + ([p.name for p in folder.glob("events.out.tfevents.*")][:1])


def resolved_run_dir(cfg: DictConfig) -> Path:
    return Path(str(cfg.hydra.run.dir)).expanduser()


# -- the commands -------------------------------------------------------------------------------------------------
@dataclass
class Launch:
    """What one ``gan-bench train`` command knows across Hydra's calls of its task: whether it created the run
    folder (a run that fails before training then leaves none behind) and the sweep jobs that failed."""

    created: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)
    checked: bool = False  # the command checked the run's config already: the run does not check it again


def _value(args: list[str], key: str) -> str | None:
    return next((a.split("=", 1)[1] for a in args if a.split("=", 1)[0].lstrip("+") == key), None)


def _without(args: list[str], *keys: str) -> list[str]:
    return [a for a in args if a.split("=", 1)[0].lstrip("+") not in keys]


def train_command(args: list[str]) -> int:
    """``gan-bench train ARGS``: help, resume, sweep or single run (see the module doc)."""
    from gan_bench.train import parse_resume

    if any(a in ("-h", "--help") for a in args):
        from gan_bench.train_help import main as train_help

        return train_help(args)
    if any(a.split("=", 1)[0] in HYDRA_FLAGS for a in args):  # Hydra's own inspection flags: Hydra answers
        return _hydra(args, Launch())
    from gan_bench import distributed

    resume = parse_resume(_value(args, "resume"))
    if distributed.launched() and resume is None:
        return distributed_command(args)
    if resume is not None:
        return resume_command(resume, args)
    if "-m" in args or "--multirun" in args:
        return sweep_command(args)
    return single_command(args)


def distributed_command(args: list[str]) -> int:
    """One run over the processes torchrun started: rank 0 checks, launches Hydra and writes; the other ranks train
    the same config in the same folder and write nothing."""
    from gan_bench import distributed
    from gan_bench.config import check_config

    if "-m" in args or "--multirun" in args:
        raise ConfigError("under torchrun gan-bench trains one run; for a sweep of data-parallel runs, launch torchrun "
                          "once per job (e.g. in each SLURM job of hydra/launcher=slurm)")
    cfg = compose_config(args, return_hydra_config=True)
    distributed.setup(str(cfg.train.device))
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    run_dir, error, launch = None, None, Launch(checked=True)
    if distributed.is_main():
        try:
            check_config(job)
            run_dir = resolved_run_dir(cfg)
            launch.created = not run_dir.exists()
            runlock.acquire(run_dir, create=True)  # rank 0 holds the folder for the whole run
            try:
                _refuse_if_holds_run(run_dir)
            except ConfigError:
                runlock.release(run_dir, discard=True)
                raise
        except GanBenchError as err:
            error = str(err)
    error, run_dir = distributed.broadcast((error, None if run_dir is None else str(run_dir)))
    if error:
        if distributed.is_main():
            raise ConfigError(error)
        return distributed.leave(2)
    if distributed.is_main():
        try:
            code = _hydra([*_without(args, "hydra.run.dir"), f"hydra.run.dir={quoted(run_dir)}"], launch)
        finally:
            runlock.release(Path(run_dir))
        return distributed.leave(code)
    check_config(job)
    return distributed.leave(_train_job(job, Path(run_dir), None, launch, sweep=False)[0])


def single_command(args: list[str]) -> int:
    cfg = compose_config(args, return_hydra_config=True)
    run_dir = resolved_run_dir(cfg)
    from gan_bench.config import check_config

    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    check_config(job)
    _preload(job)
    launch = Launch(created=not run_dir.exists(), checked=True)
    runlock.acquire(run_dir, create=True)  # before anything is written; a folder in use is refused first
    try:
        _refuse_if_holds_run(run_dir)
    except ConfigError:
        runlock.release(run_dir, discard=True)
        raise
    try:
        return _hydra([*_without(args, "hydra.run.dir"), f"hydra.run.dir={quoted(run_dir)}"], launch)
    finally:
        runlock.release(run_dir)


def _refuse_if_holds_run(run_dir: Path) -> None:
    from gan_bench.status import resume_command

    found = holds_run(run_dir)
    if found:
        raise ConfigError(f"{run_dir} already holds a run ({', '.join(found)}); continue it with "
                          f"{resume_command(run_dir)}, or choose another hydra.run.dir — nothing was written")


def _preload(cfg: DictConfig) -> None:
    """Load the data before Hydra creates the run's folder: missing or corrupt data then writes nothing."""
    from gan_bench.data.core import preload

    preload(cfg.dataset, batch_size=cfg.train.batch_size)
    if cfg.eval.metrics and cfg.eval.split == "test":
        preload(cfg.dataset, split="test", batch_size=64)


def sweep_command(args: list[str]) -> int:
    """Every job runs (in this process or, with a launcher, elsewhere); at the end the jobs' status files say which
    failed, and the command exits 1 naming them. Relaunching the same command continues its unfinished jobs."""
    launch = Launch()
    hydra_only = [a for a in args if a.lstrip("+").startswith(("hydra.", "hydra/")) and "," not in a]
    sweep_dir = Path(str(compose_config(hydra_only, return_hydra_config=True).hydra.sweep.dir)).expanduser()
    record = [] if _value(args, "hydra.output_subdir") is not None else [  # see JOB_RECORD_ENV
        "hydra.output_subdir=null", f"++hydra.job.env_set.{JOB_RECORD_ENV}=.hydra"]
    code = _hydra([*_without(args, "hydra.sweep.dir"), f"hydra.sweep.dir={quoted(sweep_dir)}", *record, *_shared(args)],
                  launch)
    failures = dict(launch.failures)
    failures.update(_failed_jobs(sweep_dir))
    if failures:
        print(f"gan-bench: {len(failures)} job(s) of the sweep failed:", file=sys.stderr)
        for run_dir, why in sorted(failures.items()):
            print(f"  {run_dir}: {why}", file=sys.stderr)
        return 1
    return code


def _shared(args: list[str]) -> list[str]:
    """Hydra's ``override_dirname.exclude_keys``: the keys every job of the sweep shares, so that the job folders
    (and ``${hydra.job.override_dirname}``) name only what differs (:mod:`gan_bench.job_names`); yours if given."""
    if _value(args, job_names.EXCLUDE_KEY) is not None:
        return []
    from hydra.errors import OverrideParseException

    try:
        keys = job_names.shared_keys(args)
    except OverrideParseException:  # a malformed override: Hydra reports it when it parses the command line
        return []
    return [f"{job_names.EXCLUDE_KEY}=[{','.join(repr(k) for k in keys)}]"] if keys else []


def _failed_jobs(sweep_dir: Path) -> dict[str, str]:
    """The jobs of a sweep folder whose status.json says they did not finish: folder -> reason."""
    import json

    out = {}
    for status in sorted(sweep_dir.glob("*/status.json")):
        try:
            record = json.loads(status.read_text())
        except ValueError:
            continue
        if record.get("state") in ("failed", "diverged", "interrupted"):
            out[str(status.parent)] = f"{record['state']}: {record.get('reason')}"
    return out


def resume_command(resume: str, args: list[str]) -> int:
    """Continue a run from its checkpoint, with the configuration stored in the checkpoint (see module doc)."""
    from gan_bench import distributed
    from gan_bench.checkpoint import load_checkpoint, resumable
    from gan_bench.config import check_config

    run_dir = _resume_dir(resume, args)
    main = os.environ.get("RANK", "0") == "0"  # torchrun: rank 0 holds the folder
    with runlock.hold(run_dir) if main and run_dir.is_dir() else contextlib.nullcontext():
        state = load_checkpoint(run_dir)
        cfg = stored_with_command(state["config"], _without(args, "resume", "hydra.run.dir"), resumable,
                                  lambda keys: f"cannot change {', '.join(keys)} when resuming: a resumed run keeps "
                                               "the configuration stored in its checkpoint; only "
                                               f"{', '.join(_resumable_list())} may change")
        cfg.resume = "true"
        distributed.setup(str(cfg.train.device))
        check_config(cfg)
        with _log_to(run_dir / "train.log") if distributed.is_main() else contextlib.nullcontext():
            code = _train_job(cfg, run_dir, state, Launch(checked=True), sweep=False)[0]
    return distributed.leave(code)


def stored_with_command(stored: dict, tokens: list[str], may_change: Callable[[str], bool],
                        refusal: Callable[[list[str]], str]) -> DictConfig:
    """A checkpoint's config (keys added since it was written at their defaults) with what ``tokens`` change in it;
    a key outside ``may_change`` whose value would change is refused (``refusal(keys)``), a value repeated unchanged
    is accepted. Before anything is imported: the stored classes and plugins must be gan-bench's own or named on
    this command line (:mod:`gan_bench.trust`)."""
    from gan_bench import trust
    from gan_bench.config import plain

    stored = trust.complete(stored)
    hydra_keys = [t for t in tokens if t.lstrip("+~").startswith(("hydra.", "hydra/"))]
    if hydra_keys:
        raise CheckpointError(refusal([t.lstrip("+~").split("=", 1)[0] for t in hydra_keys]))
    composed = plain(compose_config(tokens)) if tokens else {}
    trust.check_trusted(stored, tokens, composed)
    changes, refused = trust.command_changes(stored, tokens, composed, lambda t: plain(compose_config(t)),
                                             may_change)
    if refused:
        raise CheckpointError(refusal(refused))
    cfg = OmegaConf.create(stored)
    for path, value in changes.items():
        OmegaConf.update(cfg, path, value, force_add=True, merge=False)
    return cfg


def _resumable_list() -> list[str]:
    from gan_bench.checkpoint import RESUMABLE

    return [r for r in RESUMABLE if r != "resume"]


def _resume_dir(resume: str, args: list[str]) -> Path:
    if resume == "true":
        run = _value(args, "hydra.run.dir")
        if run is None:
            raise CheckpointError("resume=true needs the run's folder: add hydra.run.dir=PATH (or use resume=PATH)")
        return Path(run).expanduser()
    path = Path(resume).expanduser()
    return path.parent.parent if path.is_file() else path  # a checkpoint file: RUN/checkpoints/last.pt


@contextlib.contextmanager
def _log_to(path: Path):
    """Hydra's log format, to the console and appended to the run's log, while a resume runs (it does not go
    through Hydra); the handlers are removed afterwards (a process that goes on, e.g. a notebook, keeps no stream)."""
    import logging

    fmt = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    root = logging.getLogger()
    level, handlers = root.level, [logging.StreamHandler(sys.stdout), logging.FileHandler(path, mode="a")]
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def _hydra(args: list[str], launch: Launch) -> int:
    """Run ``gan-bench train`` as the Hydra app on ``args``: Hydra parses them (its own flags: ``--cfg``, ``--info``,
    ``-m``, ``-sc``, ``--hydra-help``), composes, creates the run folder, writes .hydra/ and calls :func:`_task`.

    This is what ``@hydra.main`` does (``hydra/main.py``: ``get_args_parser().parse_args()``, then ``_run_hydra``),
    with the argument list handed over instead of read from ``sys.argv`` — ``hydra.main`` takes no argument list,
    and rewriting ``sys.argv`` would be visible to everything else in the process.
    """
    from hydra import version
    from hydra._internal.utils import _run_hydra, get_args_parser

    from gan_bench.config import register_configs

    register_configs()
    version.setbase("1.3")
    parser = get_args_parser()
    parser.prog = "gan-bench train"
    ns = parser.parse_args(with_custom_targets(with_user_conf(args)))
    if ns.experimental_rerun is not None:  # Hydra unpickles the job's config.pickle: a run folder is data, not code
        raise ConfigError("--experimental-rerun loads a pickled file (it could run code); run the job again with "
                          "its overrides (RUN/.hydra/overrides.yaml), or continue it with resume=RUN")

    def task(cfg: DictConfig) -> Any:
        return _task(cfg, launch)

    _run_hydra(args=ns, args_parser=parser, task_function=task, config_path=conf_dir(), config_name="config")
    return 0


def _task(cfg: DictConfig, launch: Launch) -> Any:
    """One job of Hydra: train in the folder Hydra made, holding its lock. In a sweep, a job whose folder already
    holds its unfinished run (a requeued or relaunched job) continues it, a finished one is not run again, and a
    folder held by another process or holding another run is refused (one line; the sweep goes on and names it at
    the end); the job returns ``train.objective`` to the sweeper (Optuna), the worst value when it failed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from gan_bench import distributed

    hc = HydraConfig.get()
    run_dir, sweep = Path(hc.runtime.output_dir), hc.mode == RunMode.MULTIRUN
    _set_threads(hc)
    code, metrics = 0, None
    try:
        with runlock.hold(run_dir) if distributed.is_main() else contextlib.nullcontext():
            state, metrics = (_relaunched(cfg, run_dir) if sweep else (None, None))
            if sweep and os.environ.get(JOB_RECORD_ENV):
                _write_job_record(cfg, run_dir, os.environ[JOB_RECORD_ENV])
            if metrics is None:
                code, metrics = _train_job(cfg, run_dir, state, launch, sweep=sweep)
    except GanBenchError as err:  # a sweep job refused before it started: its folder is left as it was
        if not sweep:
            raise
        print(f"gan-bench: error: {err}", file=sys.stderr, flush=True)
        launch.failures.append((str(run_dir), f"refused: {err}"))
    if code:
        sys.exit(code)
    return objective(cfg, metrics)


#: set (through ``hydra.job.env_set``) in a sweep's jobs: Hydra's own ``.hydra/`` record is switched off
#: (``hydra.output_subdir=null``) and the job writes it into this sub-folder once it holds its folder's lock, so a
#: job refused for a folder in use or holding another run leaves that folder's record as it was
JOB_RECORD_ENV = "GAN_BENCH_JOB_RECORD"


def _write_job_record(cfg: DictConfig, run_dir: Path, subdir: str) -> None:
    """The three files Hydra writes into a job's ``.hydra/`` (config.yaml, hydra.yaml, overrides.yaml), as Hydra
    writes them; an existing record (a job continuing its run) is kept."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from gan_bench.files import atomic_write_bytes

    folder = run_dir / subdir
    if (folder / "overrides.yaml").is_file():
        return
    hydra_cfg = OmegaConf.create(OmegaConf.to_container(HydraConfig.instance().cfg, resolve=False))
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.hydra.output_subdir = subdir
        hydra_cfg.hydra.job.env_set.pop(JOB_RECORD_ENV, None)
        ours = ("hydra.output_subdir=null", f"++hydra.job.env_set.{JOB_RECORD_ENV}={subdir}")
        hydra_cfg.hydra.overrides.hydra = [o for o in hydra_cfg.hydra.overrides.hydra if o not in ours]
    files = {"config.yaml": cfg, "hydra.yaml": hydra_cfg, "overrides.yaml": hydra_cfg.hydra.overrides.task}
    for name, node in files.items():
        atomic_write_bytes(folder / name, OmegaConf.to_yaml(node).encode())


def _set_threads(hc: Any) -> None:
    """Parallel jobs on one machine (the joblib launcher): each gets cores / jobs threads, unless OMP_NUM_THREADS
    says otherwise."""
    import os

    launcher = str(OmegaConf.select(hc, "launcher._target_") or "")
    if "Joblib" not in launcher or os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    jobs = int(OmegaConf.select(hc, "launcher.n_jobs") or 1)
    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // (cores if jobs < 1 else jobs)))


def _relaunched(cfg: DictConfig, run_dir: Path) -> tuple[dict | None, dict | None]:
    """A sweep job whose folder already holds a run: (its checkpoint, None) to continue an unfinished run of this
    very config; (None, its metrics) for a finished one; a ConfigError for a different run (nothing is touched)."""
    import json

    from gan_bench.checkpoint import config_changes, load_checkpoint, resumable
    from gan_bench.config import plain
    from gan_bench.trust import complete

    if not (run_dir / "checkpoints" / "last.pt").is_file():
        return None, None
    state = load_checkpoint(run_dir)
    differs = [k for k, _, _ in config_changes(complete(state["config"]), plain(cfg)) if not resumable(k)]
    if differs:
        raise ConfigError(f"{run_dir} holds a different run ({differs[0]} differs from this job's config); nothing "
                          "was overwritten")
    status = run_dir / "status.json"
    finished = status.is_file() and json.loads(status.read_text()).get("state") == "finished"
    if finished and (run_dir / "metrics.json").is_file():
        print(f"[gan-bench] {run_dir} already finished: not run again", flush=True)
        return None, json.loads((run_dir / "metrics.json").read_text())
    print(f"[gan-bench] {run_dir} holds this job's unfinished run: continuing it", flush=True)
    return state, None


def objective(cfg: DictConfig, metrics: dict | None) -> float | None:
    """``train.objective`` of a finished job: the best value of that result over its evaluations (lowest for FID-like
    metrics, highest for IS-like ones, the last one otherwise). A job that failed or has no value gets the worst
    value for the sweeper's direction (Optuna takes no NaN): +inf when minimising, -inf when maximising."""
    name = cfg.train.get("objective")
    if not name:
        return None
    from hydra.core.hydra_config import HydraConfig

    from gan_bench.metrics.registry import objective_sign

    values = [e[name] for e in (metrics or {}).get("eval", []) if isinstance(e.get(name), (int, float))]
    if not values:
        goal = str(OmegaConf.select(HydraConfig.get(), "sweeper.direction") or "minimize")
        return float("-inf") if "max" in goal else float("inf")
    sign = objective_sign(name, metrics)
    return min(values) if sign < 0 else max(values) if sign > 0 else values[-1]


def _train_job(cfg: DictConfig, run_dir: Path, state: dict | None, launch: Launch,
               sweep: bool) -> tuple[int, dict | None]:
    """Train; every way it can end is one line and an exit code: 0 done, 2 bad input, 3 diverged, 128 + signal number
    when a signal stopped it (a sweep stops too). In a sweep a failed job is recorded and the others go on.
    Returns (exit code, metrics.json's content or None)."""
    from gan_bench import guard
    from gan_bench.train import train

    try:
        return 0, train(cfg, run_dir, state=state, checked=launch.checked)  # its last line says where the results are
    except guard.Interrupted as err:
        print(f"gan-bench: {err}", file=sys.stderr)
        return 128 + err.signum, None
    except KeyboardInterrupt:
        from gan_bench.status import resume_command

        print("gan-bench: stopped by a second Ctrl-C in the middle of a step; continue from the last checkpoint "
              f"with: {resume_command(run_dir)}", file=sys.stderr)
        return 130, None
    except Exception as err:  # bad input (GanBenchError), divergence, or a bug: one line; a bug's traceback in a sweep
        if not isinstance(err, GanBenchError) and not sweep:
            raise
        return _failed(err, run_dir, launch, sweep), None


def _failed(err: BaseException, run_dir: Path, launch: Launch, sweep: bool) -> int:
    from gan_bench import guard

    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    what = text if isinstance(err, GanBenchError) else f"{type(err).__name__}: {text}"
    print(f"gan-bench: error: {what}", file=sys.stderr)
    if not isinstance(err, GanBenchError):
        import logging

        logging.getLogger("gan_bench").exception("the job failed")  # the traceback goes to the job's log
    if sweep:
        _record_failure(run_dir, what, launch)
        return 0
    if not isinstance(err, guard.Diverged):
        _remove_if_created(run_dir, launch)
    return 3 if isinstance(err, guard.Diverged) else 2


def _record_failure(run_dir: Path, why: str, launch: Launch) -> None:
    """A sweep job's failure: in the console summary, and in its status.json unless the run recorded it already."""
    import json

    from gan_bench.status import write_status

    launch.failures.append((str(run_dir), why))

    status = run_dir / "status.json"
    try:
        record = json.loads(status.read_text()) if status.is_file() else None
    except ValueError:
        record = None
    # only this job's own record: an earlier run's status (e.g. of a run this job refused to overwrite) stays as it is
    own = record is not None and record.get("pid") == os.getpid() and record.get("state") == "running"
    if own or not status.is_file():
        write_status(run_dir, "failed", iteration=0, iterations=0, reason=why)


def _remove_if_created(run_dir: Path, launch: Launch) -> None:
    """A single run that failed before training leaves no folder behind — only a folder this launch created, and
    only with nothing in it but what this launch wrote before training (.hydra/, the job log, status.json)."""
    import shutil

    made = (".hydra", "status.json", runlock.LOCK_FILE)
    if launch.created and run_dir.is_dir() and all(p.name in made or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)
