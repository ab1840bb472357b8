"""``gan-bench train --help``: the config groups with their options and a line on each, the presets, the metrics
and Hydra's flags — read from the YAML files of ``conf/`` and the metric classes' source, without importing torch or
composing a config (well under 2 s). ``gan-bench train --cfg job [OVERRIDES]`` shows a composed config.

The description of an option is the first comment line of its YAML file (``# @package`` lines aside); the metrics
are the classes decorated ``@register_metric`` in ``gan_bench/metrics/`` (their ``name`` and docstring), read with
:mod:`ast` — ``tests/test_cli.py`` checks that they are the registry's.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Iterable

#: groups that are not options of a run, or are shown apart
HIDDEN = ("hydra",)
PRESETS = "experiment"
WIDTH = 110


def conf_root() -> Path:
    """conf/ of a source checkout, else the copy installed as the package ``gan_bench.conf``."""
    repo = Path(__file__).resolve().parent.parent / "conf"
    if (repo / "config.yaml").is_file():
        return repo
    return Path(str(resources.files("gan_bench.conf")))


def describe(path: Path) -> str:
    """The first comment line of a YAML file that is not a ``# @package`` directive."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if not text:
                continue
            if not text.startswith("#"):
                break
            text = text.lstrip("#").strip()
            if text and not text.startswith("@package"):
                return text
    except OSError:
        pass
    return ""


def groups(root: Path) -> dict[str, dict[str, str]]:
    """``group path -> {option: description}`` for every folder of ``root`` holding YAML options."""
    out: dict[str, dict[str, str]] = {}
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        rel = folder.relative_to(root).as_posix()
        if rel.split("/")[0] in HIDDEN or rel.startswith("__"):
            continue
        options = {f.stem: describe(f) for f in sorted(folder.glob("*.yaml"))}
        if options:
            out[rel] = options
    return out


def defaults(root: Path) -> dict[str, str]:
    """The default option of each group, from config.yaml's defaults list."""
    out = {}
    text = (root / "config.yaml").read_text(encoding="utf-8")
    block = text.split("defaults:", 1)[1] if "defaults:" in text else ""
    for line in block.splitlines()[1:]:
        m = re.match(r"\s*-\s*([\w/]+)\s*:\s*([\w\-\[\], ]+?)\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
        elif line.strip() and not line.lstrip().startswith(("-", "#")):
            break
    return out


def metrics(folder: Path | None = None) -> dict[str, str]:
    """``metric name -> first docstring line`` of every ``@register_metric`` class in gan_bench/metrics/."""
    folder = folder or Path(__file__).resolve().parent / "metrics"
    out = {}
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.ClassDef) or not any(_named(d, "register_metric") for d in node.decorator_list):
                continue
            name = _class_name_value(node)
            if name:
                doc = (ast.get_docstring(node) or "").strip().split("\n\n")[0]
                out[name] = " ".join(doc.split())
    return out


def _named(node: ast.expr, name: str) -> bool:
    return (isinstance(node, ast.Name) and node.id == name) or (isinstance(node, ast.Attribute) and node.attr == name)


def _class_name_value(cls: ast.ClassDef) -> str | None:
    """The string assigned to ``name`` in a class body (``name = "x"``, ``name, keys = "x", (...)`` or annotated)."""
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == "name":
            return _string(stmt.value)
        if not isinstance(stmt, ast.Assign):
            continue
        for target in stmt.targets:
            if isinstance(target, ast.Name) and target.id == "name":
                return _string(stmt.value)
            if isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple):
                for t, v in zip(target.elts, stmt.value.elts):
                    if isinstance(t, ast.Name) and t.id == "name":
                        return _string(v)
    return None


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _lines(items: Iterable[tuple[str, str]], indent: int = 2, width: int = WIDTH) -> list[str]:
    items = list(items)
    pad = max((len(k) for k, _ in items), default=0)
    out = []
    for key, text in items:
        line = f"{' ' * indent}{key:<{pad}}  {text}".rstrip()
        out.append(line if len(line) <= width else line[: width - 1] + "…")
    return out


def help_text(user_conf: Path | None = None) -> str:
    root = conf_root()
    found = groups(root)
    user = groups(user_conf) if user_conf is not None and user_conf.is_dir() and user_conf.resolve() != root else {}
    chosen = defaults(root)
    width = max(80, min(WIDTH, shutil.get_terminal_size((WIDTH, 20)).columns))
    lines = [
        "usage: gan-bench train [GROUP=OPTION ...] [KEY=VALUE ...] [+experiment=NAME] [-m] [HYDRA FLAGS]",
        "",
        "Train a GAN (a Hydra app): one run into outputs/DATE/TIME/, or with -m a sweep of every combination into",
        "multirun/DATE/TIME/N_KEY=VALUE,.../ named by the values that differ (TensorBoard logs, samples, checkpoints,",
        "metrics.json, status.json per run).",
        "",
        "== Config groups (GROUP=OPTION; * = default) ==",
    ]
    for group, options in found.items():
        if group == PRESETS:
            continue
        lines.append(f"{group}:")
        mine = user.get(group, {})
        rows = [(f"{o}{'*' if chosen.get(group) == o else ''}", d) for o, d in options.items()]
        rows += [(f"{o} (your conf/)", d) for o, d in mine.items() if o not in options]
        lines += _lines(rows, 2, width)
    for group in sorted(set(user) - set(found)):
        lines.append(f"{group} (your conf/):")
        lines += _lines(user[group].items(), 2, width)
    if PRESETS in found:
        lines += ["", "== Paper presets (+experiment=NAME) =="]
        lines += _lines(found[PRESETS].items(), 2, width)
    lines += ["", "== Metrics (eval.metrics=[NAME,...]; plugins=[module] adds your own) =="]
    lines += _lines(metrics().items(), 2, width)
    lines += [
        "",
        "== Keys ==",
        "Any key of the composed config: train.iterations=2000 train.seed=1 optimizer.g.lr=2e-4 eval.every=500 ...",
        "See them all, with their values: gan-bench train --cfg job [OVERRIDES]   (--cfg hydra: Hydra's own)",
        "A component's class is its _target_: model.discriminator._target_=my_pkg.MyD (README: Plug in your own).",
        "resume=RUN_DIR continues a run from its checkpoint (only train.iterations, eval.*, ... may change).",
        "",
        "== Hydra ==",
        "-m / --multirun          sweep: aggregation=avg,hv train.seed=1,2,3 (hydra/launcher=joblib|slurm in parallel)",
        "--cfg job|hydra|all      print the config and exit;  --resolve  with interpolations resolved",
        "--info [searchpath|defaults|defaults-tree|config|plugins]   how the config was composed",
        "-sc install=bash|zsh     tab completion: eval \"$(gan-bench train -sc install=bash)\"",
        "--hydra-help             Hydra's own help;  --version  Hydra's version (gan-bench --version: gan-bench's)",
        "",
        "examples:",
        "  gan-bench train                                          the embedded digits, 1 discriminator",
        "  gan-bench train +experiment=quickstart eval.metrics=[fid_classifier]",
        "  gan-bench train -m aggregation=avg,gman,hv,mgd discriminators=d4 train.seed=1,2,3",
    ]
    return "\n".join(lines)


def main(args: list[str]) -> int:
    user = Path(os.getcwd()) / "conf"
    print(help_text(user))
    return 0
