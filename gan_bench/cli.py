"""``gan-bench``: one argparse parser with a sub-command each; ``train`` is a Hydra app (:mod:`gan_bench.launch`),
the others are argparse tools whose parsers (:mod:`gan_bench.commands`) answer ``--help`` without importing torch.

Tab completion is Hydra's: ``eval "$(gan-bench train -sc install=bash)"`` installs a bash function that asks
``gan-bench -sc query=bash`` with the line typed so far (``COMP_LINE``); here a line past ``gan-bench train`` is
answered by the train app (config groups, options, keys), an earlier one with the sub-command names.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

#: sub-command -> (one line on it, module, function taking the argument list)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("train a GAN: a Hydra app (GROUP=OPTION, KEY=VALUE, +experiment=NAME, -m for sweeps)",
              "gan_bench.launch", "train_command"),
    "eval": ("compute metrics of a run or checkpoint, recorded where they belong", "gan_bench.eval_command",
             "eval_main"),
    "fid": ("FID between two image folders or .npz statistics files (like pytorch-fid's CLI)", "gan_bench.metrics",
            "fid_cli"),
    "weights": ("install / show the Inception weights of FID and IS", "gan_bench.metrics", "weights_cli"),
    "classifier": ("train the domain classifier of classifier-FID: gan-bench classifier train dataset=digits",
                   "gan_bench.classifier_command", "classifier_main"),
    "report": ("turn the runs of sweeps into a table and figures", "gan_bench.report", "report_main"),
}
EXAMPLES = """examples:
  gan-bench train                                       train on the embedded digits (offline)
  gan-bench train -m aggregation=avg,gman,hv,mgd discriminators=d4 train.seed=1,2,3
  gan-bench report multirun/DATE/TIME                   the sweep's table and figures
  eval "$(gan-bench train -sc install=bash)"            tab completion of commands, groups and options

'gan-bench COMMAND --help' shows a command's options."""


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("gan-bench")
    except PackageNotFoundError:  # a source tree on the path without an install
        return "unknown (not installed)"


def _parsers() -> dict[str, Callable]:
    """The torch-free parser of each argparse sub-command (train's arguments go to Hydra as they are)."""
    from gan_bench import commands
    from gan_bench.eval_command import parser as eval_parser
    from gan_bench.report import _parser as report_parser

    return {"eval": eval_parser, "fid": commands.fid_parser, "weights": commands.weights_parser,
            "classifier": commands.classifier_parser, "report": report_parser}


def parser():
    import argparse

    from gan_bench.commands import Parser

    p = Parser(prog="gan-bench", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
               description="An experiment runner for GAN training-stabilisation research: many discriminators, game "
                           "optimizers, stabilisers and exact metrics, driven by Hydra configs.")
    p.add_argument("--version", action="version", version=f"gan-bench {version()}")
    p.add_argument("-sc", "--shell-completion", metavar="query=bash", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (text, _, _) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return p


def complete(query: str) -> int:
    """Answer the shell's completion query (Hydra's protocol: ``COMP_LINE`` is the line typed so far)."""
    if not query.startswith("query="):  # install=bash, uninstall=bash: Hydra's own answer
        from gan_bench.launch import train_command

        return train_command(["-sc", query])
    line = os.environ.get("COMP_LINE", "")
    words = line.split()
    typing_command = len(words) < 2 or (len(words) == 2 and not line.endswith(" "))
    if not typing_command and words[1] == "train":
        from gan_bench.launch import train_command

        rest = line.split("train", 1)[1]
        os.environ["COMP_LINE"] = f"{words[0]}{rest}"  # the line as the train app sees it
        os.environ.pop("COMP_POINT", None)
        return train_command(["-sc", query])
    prefix = words[1] if len(words) == 2 and not line.endswith(" ") else ""
    if typing_command:
        print(" ".join(c for c in COMMANDS if c.startswith(prefix)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = parser()
    if not argv:
        top.print_help()
        return 2
    if argv[0] in COMMANDS:
        cmd, rest = argv[0], argv[1:]
    else:
        ns = top.parse_args(argv)  # --help, --version, an unknown command: argparse answers and exits
        if ns.shell_completion:
            return complete(ns.shell_completion)
        top.print_help()
        return 2
    from gan_bench.errors import GanBenchError

    try:
        if cmd == "train" and any(a in ("-h", "--help") for a in rest):
            from gan_bench.train_help import main as train_help

            return train_help(rest)
        if cmd != "train":  # usage errors and --help, before anything heavy is imported
            check = _parsers()[cmd]()
            check.parse_intermixed_args(rest) if cmd == "eval" else check.parse_args(rest)
        import importlib

        _, module, func = COMMANDS[cmd]
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except GanBenchError as err:
        print(f"gan-bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
