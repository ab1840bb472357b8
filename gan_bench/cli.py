"""``gan-bench`` entry point: ``train`` is a Hydra app; the other sub-commands are plain argparse tools."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Callable

COMMANDS = {
    "train": "train a GAN (Hydra app: key=value overrides, +experiment=NAME, -m sweeps; --help lists the groups)",
    "eval": "compute metrics on a finished run or checkpoint and append them to its metrics.json",
    "fid": "FID between two folders of images or .npz statistics files (like pytorch-fid's CLI)",
    "weights": "install / show the Inception weights used for FID and IS",
    "classifier": "train the domain classifier used for classifier-FID: gan-bench classifier train dataset=mnist",
    "report": "turn the metrics.json files of a sweep into a table",
}


def conf_dir() -> str:
    """conf/ of a source checkout if there is one next to the package, else the copy installed as gan_bench.conf."""
    repo_conf = Path(__file__).resolve().parent.parent / "conf"
    if (repo_conf / "config.yaml").is_file():
        return str(repo_conf)
    return "pkg://gan_bench.conf"


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: gan-bench COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "Run 'gan-bench COMMAND --help' for a command's options."]
    return "\n".join(lines)


def _error(msg: str, code: int = 2) -> int:
    print(f"gan-bench: error: {msg}", file=sys.stderr)
    return code


def _is_fresh(run_dir: Path) -> bool:
    """True if the folder holds nothing but what Hydra wrote for this launch (.hydra/ and the job log)."""
    if not run_dir.is_dir():
        return True
    return all(p.name == ".hydra" or p.suffix == ".log" for p in run_dir.iterdir())


def _resume_overrides(args: list[str]) -> list[str]:
    """``resume=RUN_DIR`` (or ``hydra.run.dir=RUN_DIR resume=true``): rerun with the run's original overrides,
    the user's new ones on top, in the same folder; Hydra's record of this launch goes to .hydra/resume-<time>/."""
    from gan_bench.errors import CheckpointError

    value = next((a.split("=", 1)[1] for a in args if a.startswith("resume=")), None)
    if value in (None, "", "null", "false", "False"):
        return args
    if value in ("true", "True"):
        run = next((a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")), None)
        if run is None:
            raise CheckpointError("resume=true needs the run's folder: add hydra.run.dir=PATH (or use resume=PATH)")
    else:
        run = value
    run_dir = Path(run).expanduser()
    if run_dir.is_file():  # a checkpoint file: its run is two levels up (RUN/checkpoints/last.pt)
        run_dir = run_dir.parent.parent
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        raise CheckpointError(f"cannot resume: {run_dir / 'checkpoints' / 'last.pt'} does not exist")
    original: list[str] = []
    recorded = run_dir / ".hydra" / "overrides.yaml"
    if recorded.is_file():
        from omegaconf import OmegaConf

        original = [o for o in OmegaConf.load(recorded) if not o.startswith(("resume=", "hydra."))]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rest = [a for a in args if not a.startswith(("resume=", "hydra.run.dir="))]
    resume_value = value if value not in ("true", "True") else "true"
    return original + rest + [f"resume={resume_value}", f"hydra.run.dir={run_dir}",
                               f"hydra.output_subdir=.hydra/resume-{stamp}"]


def train_main(args: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from gan_bench.config import register_configs
    from gan_bench.errors import GanBenchError

    try:
        args = _resume_overrides(args)
    except GanBenchError as err:
        return _error(str(err))
    register_configs()

    @hydra.main(config_path=conf_dir(), config_name="config", version_base="1.3")
    def task(cfg: DictConfig) -> None:
        from gan_bench.train import train

        run_dir = Path(HydraConfig.get().runtime.output_dir)
        fresh = _is_fresh(run_dir) and cfg.resume in (None, "", "false", "False")
        try:
            out = train(cfg, run_dir)
        except KeyboardInterrupt:
            sys.exit(130)  # train() said where the run stands
        except GanBenchError as err:
            if fresh:  # leave no half-made run folder behind
                shutil.rmtree(run_dir, ignore_errors=True)
            print(f"gan-bench: error: {err}", file=sys.stderr)
            sys.exit(2)
        print(f"[gan-bench] done: {out['iterations']} iterations in {out['wall_clock_s']:.1f} s "
              f"({out['iterations_per_s']:.1f} it/s); results in {run_dir} (metrics.json, samples/, checkpoints/)",
              flush=True)

    sys.argv = ["gan-bench train", *args]
    task()
    return 0


def _lazy(module: str, func: str) -> Callable[[list[str]], int]:
    def run(args: list[str]) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), func)(args) or 0)

    return run


HANDLERS: dict[str, Callable[[list[str]], int]] = {
    "train": train_main,
    "eval": _lazy("gan_bench.evaluate", "eval_main"),
    "fid": _lazy("gan_bench.metrics", "fid_cli"),
    "weights": _lazy("gan_bench.metrics", "weights_cli"),
    "classifier": _lazy("gan_bench.evaluate", "classifier_main"),
    "report": _lazy("gan_bench.report", "report_main"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in HANDLERS:
        return _error(f"unknown command {cmd!r}\n\n{_usage()}")
    from gan_bench.errors import GanBenchError

    try:
        return HANDLERS[cmd](rest)
    except GanBenchError as err:
        return _error(str(err))


if __name__ == "__main__":
    sys.exit(main())
