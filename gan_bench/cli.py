"""``gan-bench`` entry point: ``train`` is a Hydra app (gan_bench/launch.py); the other sub-commands are argparse
tools."""
from __future__ import annotations

import sys
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
    from gan_bench.launch import conf_dir as _conf_dir

    return _conf_dir()


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: gan-bench COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "Run 'gan-bench COMMAND --help' for a command's options."]
    return "\n".join(lines)


def _error(msg: str, code: int = 2) -> int:
    print(f"gan-bench: error: {msg}", file=sys.stderr)
    return code


def _lazy(module: str, func: str) -> Callable[[list[str]], int]:
    def run(args: list[str]) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), func)(args) or 0)

    return run


HANDLERS: dict[str, Callable[[list[str]], int]] = {
    "train": _lazy("gan_bench.launch", "train_command"),
    "eval": _lazy("gan_bench.eval_command", "eval_main"),
    "fid": _lazy("gan_bench.metrics", "fid_cli"),
    "weights": _lazy("gan_bench.metrics", "weights_cli"),
    "classifier": _lazy("gan_bench.classifier_command", "classifier_main"),
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
