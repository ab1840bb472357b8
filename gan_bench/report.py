"""``gan-bench report``: the metrics.json files of a (Hydra multi-)run turned into a paper table.

Runs are grouped by the swept keys (the overrides that differ between runs, seeds excepted, or ``--by`` config keys);
each cell is ``mean ± s`` over the runs of a group, with ``s`` the sample standard deviation (ddof = 1) and the number
of runs ``n`` shown. An evaluation metric is reduced per run first: its best value over the run's evaluations
(``--at best``: min for FID/KID, max for IS, coverage, precision, recall) or its value at the last evaluation
(``--at last``). The cost columns follow Table 2 of Albuquerque et al., "Multi-objective training of Generative
Adversarial Networks with multiple discriminators" (ICML 2019): FLOPs per iteration, parameters of all
discriminators, peak memory, seconds per iteration and wall clock to the best FID.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import yaml

from gan_bench.errors import GanBenchError

if TYPE_CHECKING:
    from rich.table import Table

MISSING = "–"
LOWER_IS_BETTER = frozenset({"fid", "fid_classifier", "kid_mean", "mode_kl"})
HIGHER_IS_BETTER = frozenset({"is_mean", "modes_covered", "high_quality", "precision", "recall"})
# the evaluation metrics shown by default (those present in at least one run), in this order
DEFAULT_METRICS = ("fid", "fid_classifier", "kid_mean", "is_mean", "precision", "recall", "modes_covered",
                   "high_quality", "mode_kl")
LABELS = {"fid": "FID", "fid_classifier": "FID (classifier)", "kid_mean": "KID", "is_mean": "IS",
          "modes_covered": "modes", "high_quality": "high quality", "mode_kl": "mode KL"}
# metrics.json["cost"] key -> column label, whether to print it with an SI prefix
COST_COLUMNS = {
    "flops_per_iteration": ("FLOPs/it", True),
    "params_D_total": ("params (all D)", True),
    "peak_memory_mb": ("peak mem (MB)", False),
    "seconds_per_iteration": ("s/it", False),
    "wall_clock_to_best_fid_s": ("time to best FID (s)", False),
}
FORMATS = ("table", "markdown", "latex", "csv")
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".tex": "latex", ".csv": "csv"}


@dataclass
class RunRecord:
    """One run: its folder, its launch overrides (``key -> value``) and its parsed metrics.json."""

    path: Path
    overrides: dict[str, str]
    metrics: dict[str, Any]


@dataclass
class Stat:
    """Mean, sample standard deviation (NaN for n = 1) and count of the per-run values of one cell."""

    mean: float
    std: float
    n: int


@dataclass
class Column:
    key: str
    label: str
    source: str  # "eval" or "cost"
    direction: int = 0  # +1 higher is better, -1 lower is better, 0 unknown
    si: bool = False


@dataclass
class Row:
    labels: tuple[str, ...]
    n: int
    cells: dict[str, Stat | None] = field(default_factory=dict)


@dataclass
class Report:
    group_keys: list[str]
    columns: list[Column]
    rows: list[Row]
    caption: str


# -- finding runs -------------------------------------------------------------------------------------------------
def _warn(msg: str) -> None:
    print(f"gan-bench: warning: {msg}", file=sys.stderr)


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
    if any(_number(e.get("iteration")) is None for e in evals):
        return "an 'eval' entry has no numeric 'iteration'"
    for key in ("cost", "config"):
        if not isinstance(m.get(key, {}), dict):
            return f"'{key}' is not an object"
    return None


def load_run(metrics_file: Path) -> RunRecord | None:
    """The run holding ``metrics_file``; None (with a warning naming the file) if it or its overrides are corrupt."""
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        _warn(f"skipping corrupt {metrics_file}: {err}")
        return None
    problem = _metrics_problem(metrics)
    if problem:
        _warn(f"skipping corrupt {metrics_file}: {problem}")
        return None
    run_dir = metrics_file.parent
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    lines: Any = []
    if overrides_file.is_file():
        try:
            lines = yaml.safe_load(overrides_file.read_text()) or []
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            _warn(f"skipping {run_dir}: corrupt {overrides_file}: {err}")
            return None
        if not isinstance(lines, list):
            _warn(f"skipping {run_dir}: {overrides_file} is not a list of key=value strings")
            return None
    return RunRecord(run_dir, parse_overrides(lines), metrics)


def _natural_key(text: str) -> tuple:
    """Sort key putting numbers in numeric order: d2 < d16, 0.001 < 0.01, job 9 < job 10."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text)))


def find_runs(paths: Sequence[str | Path]) -> list[RunRecord]:
    """Every run whose metrics.json lies at or below one of ``paths`` (each run once, in natural path order)."""
    runs: list[RunRecord] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise GanBenchError(f"{path} does not exist")
        found = [path] if path.is_file() else sorted(path.rglob("metrics.json"), key=lambda p: _natural_key(str(p)))
        if not found:
            raise GanBenchError(f"no run found below {path} (no metrics.json in it or its sub-folders)")
        for f in found:
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            run = load_run(f)
            if run is not None:
                runs.append(run)
    if not runs:
        raise GanBenchError(f"no readable run found below {', '.join(map(str, paths))}")
    return runs


# -- grouping -----------------------------------------------------------------------------------------------------
def _is_seed(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == "seed"


def swept_keys(runs: Sequence[RunRecord]) -> list[str]:
    """The override keys whose value differs between runs (absent counts as a value), seeds excepted."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.overrides if k not in keys and not _is_seed(k)]
    return [k for k in keys if len({run.overrides.get(k) for run in runs}) > 1]


def config_value(config: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """``(found, value)`` of a dotted key such as ``discriminators.count`` in a resolved config dict."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


Groups = dict[tuple[str, ...], list[RunRecord]]


def group_runs(runs: Sequence[RunRecord], by: Sequence[str] | None) -> tuple[list[str], Groups]:
    """Group keys and ``{labels: runs}`` in natural label order: by varying overrides, or by ``by`` config keys."""
    if by:
        for key in by:
            values = [config_value(r.metrics.get("config", {}), key) for r in runs]
            if not any(found for found, _ in values):
                raise GanBenchError(f"--by {key}: no run has this key in its config (metrics.json 'config')")
            if any(isinstance(v, dict) for _, v in values):
                raise GanBenchError(f"--by {key} is a config section, not a value; name one of its keys, "
                                    f"e.g. {key}.name")
        keys = list(by)

        def labels_of(r: RunRecord) -> tuple[str, ...]:
            found = [config_value(r.metrics.get("config", {}), k) for k in keys]
            return tuple(_label(v) if ok else MISSING for ok, v in found)
    else:
        keys = swept_keys(runs)

        def labels_of(r: RunRecord) -> tuple[str, ...]:
            return tuple(r.overrides.get(k, "(default)") for k in keys)

    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(labels_of(run), []).append(run)
    order = sorted(groups, key=lambda labels: tuple(_natural_key(x) for x in labels))
    return keys, {labels: groups[labels] for labels in order}


# -- per-run values -----------------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / NaN / inf values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def direction(metric: str) -> int:
    """+1 if a higher value is better, -1 if lower is better, 0 if unknown."""
    return 1 if metric in HIGHER_IS_BETTER else -1 if metric in LOWER_IS_BETTER else 0


def _best(values: list[float], metric: str) -> float:
    return max(values) if direction(metric) > 0 else min(values)


def eval_value(metrics: dict[str, Any], metric: str, generator: str, at: str) -> float | None:
    """One run's value of an evaluation metric for ``generator`` (a name, or ``best`` = any generator):
    ``at="best"``: the best over all its evaluations; ``at="last"``: at its last evaluation (for
    ``generator="best"`` the best generator there). None if the run never evaluated it."""
    entries = [e for e in metrics.get("eval", []) if generator == "best" or e.get("generator") == generator]
    if at == "last" and entries:
        last_iter = max(e["iteration"] for e in entries)
        entries = [e for e in entries if e["iteration"] == last_iter]
        if generator != "best":
            entries = entries[-1:]
    values = [v for v in (_number(e.get(metric)) for e in entries) if v is not None]
    if not values:
        return None
    return _best(values, metric) if at == "best" or generator == "best" else values[-1]


def summarize(values: Sequence[float]) -> Stat | None:
    """Mean and sample standard deviation (ddof = 1; NaN for a single value) of a cell's per-run values."""
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    return Stat(float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan, int(arr.size))


# -- the table ----------------------------------------------------------------------------------------------------
def evaluated_metrics(runs: Sequence[RunRecord]) -> set[str]:
    """The metric names found in any evaluation of any run."""
    return {k for r in runs for e in r.metrics.get("eval", []) for k in e} - {"iteration", "wall_clock_s", "generator"}


def build_report(runs: Sequence[RunRecord], metrics: Sequence[str] | None = None, by: Sequence[str] | None = None,
                 generator: str = "raw", at: str = "best") -> Report:
    """The grouped table: one row per group, eval metric columns then the cost columns some run has."""
    present = evaluated_metrics(runs)
    metrics = list(metrics) if metrics is not None else [m for m in DEFAULT_METRICS if m in present]
    unknown = [m for m in metrics if direction(m) == 0]
    if unknown and (at == "best" or generator == "best"):
        option = "--at best" if at == "best" else "--generator best"
        raise GanBenchError(f"{option} needs to know whether higher or lower is better, unknown for "
                            f"{', '.join(unknown)}; use --at last with a named generator for these")
    generators = {e.get("generator") for r in runs for e in r.metrics.get("eval", [])}
    if generator != "best" and generator not in generators:
        _warn(f"no run evaluated generator {generator!r} "
              f"(evaluated: {', '.join(sorted(map(str, generators))) or 'nothing'})")
    for m in metrics:
        if m not in present:
            _warn(f"no run evaluated metric {m!r} (evaluated: {', '.join(sorted(present)) or 'nothing'})")
    columns = [Column(m, LABELS.get(m, m), "eval", direction(m)) for m in metrics]
    columns += [Column(key, label, "cost", 0, si) for key, (label, si) in COST_COLUMNS.items()
                if any(_number(r.metrics.get("cost", {}).get(key)) is not None for r in runs)]
    keys, groups = group_runs(runs, by)
    rows = []
    for labels, members in groups.items():
        row = Row(labels, len(members))
        for col in columns:
            if col.source == "eval":
                per_run = [eval_value(r.metrics, col.key, generator, at) for r in members]
            else:
                per_run = [_number(r.metrics.get("cost", {}).get(col.key)) for r in members]
            row.cells[col.key] = summarize([v for v in per_run if v is not None])
        rows.append(row)
    which = "any generator" if generator == "best" else f"generator {generator}"
    reduce = "best evaluation" if at == "best" else "last evaluation"
    caption = f"mean ± sample std over the n runs of each group; eval metrics at each run's {reduce} ({which})"
    return Report(keys, columns, rows, caption)


# -- number formatting ----------------------------------------------------------------------------------------------
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _si(x: float) -> tuple[float, str]:
    for scale, prefix in _SI:
        if abs(x) >= scale:
            return scale, prefix
    return 1.0, ""


def format_stat(stat: Stat, si: bool = False) -> tuple[str, str | None, str]:
    """``(mean, std or None, unit prefix)`` as text: the std to 2 significant digits and the mean to the same
    decimal place; a lone or constant value to 4 significant digits."""
    scale, prefix = _si(stat.mean) if si else (1.0, "")
    mean, std = stat.mean / scale, stat.std / scale
    if stat.n < 2 or std == 0:
        text = str(int(mean)) if mean.is_integer() and abs(mean) < 1e6 else f"{mean:.4g}"
        return text, None, prefix
    decimals = max(0, 1 - math.floor(math.log10(std)))
    return f"{mean:.{decimals}f}", f"{std:.{decimals}f}", prefix


def _best_means(report: Report) -> dict[str, float]:
    """Per eval column with a known direction, the best group mean, where the groups' means differ."""
    out = {}
    for col in report.columns:
        means = [r.cells[col.key].mean for r in report.rows if r.cells[col.key] is not None]
        if col.direction and len(set(means)) > 1:
            out[col.key] = max(means) if col.direction > 0 else min(means)
    return out


def _row_start(report: Report, row: Row) -> list[str]:
    """A row's group labels (``all`` when nothing was swept) and its run count."""
    return (list(row.labels) if report.group_keys else ["all"]) + [str(row.n)]


def _cells(report: Report, cell: Callable[[Stat, Column, int, bool], Any], missing: str) -> list[list[Any]]:
    """Body rows: group labels, n, then each column via ``cell(stat, column, group n, is best)``."""
    best = _best_means(report)
    body = []
    for row in report.rows:
        line = _row_start(report, row)
        for col in report.columns:
            stat = row.cells[col.key]
            line.append(missing if stat is None else cell(stat, col, row.n, best.get(col.key) == stat.mean))
        body.append(line)
    return body


def _arrow(col: Column, up: str, down: str) -> str:
    return f" {up}" if col.direction > 0 else f" {down}" if col.direction < 0 else ""


def _plain_cell(stat: Stat, col: Column, n: int) -> str:
    mean, std, unit = format_stat(stat, col.si)
    text = f"{mean}{unit}" if std is None else f"{mean}{unit} ± {std}{unit}"
    return text if stat.n == n else f"{text} (n={stat.n})"


def _headers(report: Report, up: str, down: str) -> list[str]:
    return (report.group_keys or ["runs"]) + ["n"] + [c.label + _arrow(c, up, down) for c in report.columns]


def rich_table(report: Report) -> Table:
    """The report as a rich table; the best group mean per metric in bold."""
    from rich.table import Table
    from rich.text import Text

    table = Table(caption=report.caption, caption_justify="left")
    n_left = max(1, len(report.group_keys))
    for i, head in enumerate(_headers(report, "↑", "↓")):
        table.add_column(Text(head), justify="left" if i < n_left else "right")

    def cell(stat: Stat, col: Column, n: int, best: bool) -> Text:
        return Text(_plain_cell(stat, col, n), style="bold" if best else "")

    for line in _cells(report, cell, MISSING):
        table.add_row(*(Text(x) if isinstance(x, str) else x for x in line))
    return table


def render_table(report: Report) -> str:
    """The rich table as plain text, as wide as it needs."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=10_000, color_system=None, force_terminal=False)
    console.print(rich_table(report))
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def render_markdown(report: Report) -> str:
    def cell(stat: Stat, col: Column, n: int, best: bool) -> str:
        text = _plain_cell(stat, col, n)
        return f"**{text}**" if best else text

    def md_row(items: list[str]) -> str:
        return "| " + " | ".join(x.replace("|", "\\|") for x in items) + " |"

    heads = _headers(report, "↑", "↓")
    n_left = max(1, len(report.group_keys))
    lines = [md_row(heads), "|" + "|".join(":---" if i < n_left else "---:" for i in range(len(heads))) + "|"]
    lines += [md_row(line) for line in _cells(report, cell, MISSING)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(report: Report) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); the best group mean per metric in bold."""
    def cell(stat: Stat, col: Column, n: int, best: bool) -> str:
        mean, std, unit = format_stat(stat, col.si)
        unit = rf"\,\mathrm{{{unit}}}" if unit else ""
        body = f"{mean}{unit}" if std is None else rf"{mean}{unit} \pm {std}{unit}"
        text = rf"$\mathbf{{{body}}}$" if best else f"${body}$"
        return text if stat.n == n else rf"{text} ($n={stat.n}$)"

    heads = [latex_escape(h) for h in (report.group_keys or ["runs"])] + ["$n$"]
    heads += [latex_escape(c.label) + _arrow(c, r"$\uparrow$", r"$\downarrow$") for c in report.columns]
    n_left = max(1, len(report.group_keys))
    body = [[latex_escape(x) if i < n_left else x for i, x in enumerate(line)] for line in _cells(report, cell, "--")]
    lines = [f"% gan-bench report: {report.caption}".replace("±", "+/-"),
             r"\begin{tabular}{" + "l" * n_left + "r" * (len(heads) - n_left) + "}", r"\toprule",
             " & ".join(heads) + r" \\", r"\midrule"]
    lines += [" & ".join(line) + r" \\" for line in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    """Machine-readable: group labels, n, and per column ``KEY_mean, KEY_std, KEY_n`` (empty where undefined)."""
    def num(x: float) -> str:
        return "" if math.isnan(x) else repr(x)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow((report.group_keys or ["runs"]) + ["n"]
                    + [f"{c.key}_{s}" for c in report.columns for s in ("mean", "std", "n")])
    for row in report.rows:
        line = _row_start(report, row)
        for col in report.columns:
            stat = row.cells[col.key]
            line += ["", "", "0"] if stat is None else [num(stat.mean), num(stat.std), str(stat.n)]
        writer.writerow(line)
    return buf.getvalue()


RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table, "markdown": render_markdown, "latex": render_latex, "csv": render_csv,
}


# -- command line -------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-bench report", description="Turn the metrics.json files of runs and sweeps "
                                "into a table: mean ± sample std over seeds per group, plus cost columns.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="run or sweep folders (searched recursively) or metrics.json files")
    p.add_argument("--metrics", help="comma-separated eval metrics (default: those the runs have among "
                   + ",".join(DEFAULT_METRICS) + ")")
    p.add_argument("--by", help="comma-separated dotted config keys to group by "
                   "(default: the swept overrides, seeds excepted)")
    p.add_argument("--generator", default="raw", help="raw, ema, uniform, or best (the best of all) (default: raw)")
    p.add_argument("--at", choices=("best", "last"), default="best",
                   help="per run, the best evaluation or the last one (default: best)")
    p.add_argument("--format", choices=FORMATS, help="default: table, or from the --output suffix (.md .tex .csv)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of the terminal")
    p.add_argument("--force", action="store_true", help="let --output replace an existing file")
    return p


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise GanBenchError(f"expected a comma-separated list, got {text!r}")
    return items


def write_output(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` atomically (temp file + os.replace); an existing file only with ``force``."""
    from gan_bench.files import atomic_write_bytes

    if path.is_dir():
        raise GanBenchError(f"--output {path} is a folder")
    if path.exists() and not force:
        raise GanBenchError(f"{path} already exists; nothing was written (add --force to replace it)")
    atomic_write_bytes(path, text.encode())


def report_main(args: list[str]) -> int:
    """``gan-bench report PATH... [--metrics M,..] [--by KEY,..] [--generator G] [--at best|last] [--format F]
    [--output FILE [--force]]``; returns the exit code, raises GanBenchError for user errors."""
    opts = _parser().parse_args(args)
    out = Path(opts.output).expanduser() if opts.output else None
    fmt = opts.format or (SUFFIX_FORMATS.get(out.suffix.lower(), "table") if out else "table")
    runs = find_runs(opts.paths)
    report = build_report(runs, _split(opts.metrics), _split(opts.by), opts.generator, opts.at)
    if out is not None:
        write_output(out, RENDERERS[fmt](report), opts.force)
        print(f"wrote {out} ({len(runs)} runs, {len(report.rows)} groups)", file=sys.stderr)
    elif fmt == "table" and sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich_table(report))
    else:
        print(RENDERERS[fmt](report), end="")
    return 0
