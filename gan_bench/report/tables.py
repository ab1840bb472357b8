"""The report's table: finished runs grouped, statistics per group, rendered as text, markdown, LaTeX or CSV.

Runs are grouped by the swept keys (the overrides that differ between runs, seeds excepted, or ``--by`` config keys);
each cell is ``mean ± s`` over the runs of a group, with ``s`` the sample standard deviation (ddof = 1) and the number
of runs ``n`` shown. An evaluation metric is reduced per run first: its best value over the run's evaluations
(``--at best``: min for FID/KID, max for IS, coverage, precision, recall) or its value at the last evaluation
(``--at last``). The cost columns follow Table 2 of Albuquerque et al., "Multi-objective training of Generative
Adversarial Networks with multiple discriminators" (ICML 2019): FLOPs per iteration, parameters of all
discriminators, peak memory, seconds per iteration and wall clock to the best FID.

Jobs that did not finish (see :mod:`gan_bench.report.collect`) count towards their group's number of launched jobs
(the ``n`` column reads ``n/N`` when fewer than N launched jobs finished) and are listed under the table.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from gan_bench.errors import GanBenchError
from gan_bench.report.collect import LISTED_STATES, Job, RunRecord, natural_key, number, warn

if TYPE_CHECKING:
    from rich.table import Table

MISSING = "–"
LOWER_IS_BETTER = frozenset({"fid", "fid_classifier", "kid_mean", "mode_kl", "mode_kl_stacked"})
HIGHER_IS_BETTER = frozenset({"is_mean", "modes_covered", "high_quality", "precision", "recall",
                              "modes_covered_stacked"})
# the evaluation metrics shown by default (those present in at least one run), in this order
DEFAULT_METRICS = ("fid", "fid_classifier", "kid_mean", "is_mean", "precision", "recall", "modes_covered",
                   "high_quality", "mode_kl", "modes_covered_stacked", "mode_kl_stacked")
LABELS = {"fid": "FID", "fid_classifier": "FID (classifier)", "kid_mean": "KID", "is_mean": "IS",
          "modes_covered": "modes", "high_quality": "high quality", "mode_kl": "mode KL",
          "modes_covered_stacked": "modes (stacked)", "mode_kl_stacked": "mode KL (stacked)"}
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
    n: int  # finished runs: the ones the statistics rest on
    cells: dict[str, Stat | None] = field(default_factory=dict)
    launched: int = -1  # jobs of the group, finished or not (-1: same as n)
    runs: list[RunRecord] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.launched < 0:
            self.launched = self.n

    @property
    def n_text(self) -> str:
        """``"3"``, or ``"2/3"`` when only 2 of the group's 3 launched jobs finished."""
        return str(self.n) if self.n == self.launched else f"{self.n}/{self.launched}"


@dataclass
class Report:
    group_keys: list[str]
    columns: list[Column]
    rows: list[Row]
    caption: str
    jobs: list[Job] = field(default_factory=list)  # every job found, finished or not

    @property
    def others(self) -> list[Job]:
        """The jobs that did not finish: listed under the table."""
        return [j for j in self.jobs if not j.finished]


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


def option_name(target: str) -> str:
    """The short option name of a component class (``gan_bench.aggregation.hypervolume.Hypervolume`` -> ``hv``), or
    the class path for one that gan-bench does not register (a user's own)."""
    from gan_bench.config import component_groups

    for registry in component_groups().values():
        name = registry.name_of(target)
        if name is not None:
            return name
    return target


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("_target_"), str):
        return option_name(value["_target_"])
    return json.dumps(value)


Groups = dict[tuple[str, ...], list[RunRecord]]


def group_runs(runs: Sequence[RunRecord], by: Sequence[str] | None) -> tuple[list[str], Groups]:
    """Group keys and ``{labels: runs}`` in natural label order: by varying overrides, or by ``by`` config keys."""
    if by:
        for key in by:
            values = [config_value(r.metrics.get("config", {}), key) for r in runs]
            if not any(found for found, _ in values):
                raise GanBenchError(f"--by {key}: no run has this key in its config (metrics.json 'config')")
            if any(isinstance(v, dict) and "_target_" not in v for _, v in values):
                raise GanBenchError(f"--by {key} is a config section, not a value; name one of its keys, "
                                    f"e.g. {key}.count")
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
    order = sorted(groups, key=lambda labels: tuple(natural_key(x) for x in labels))
    return keys, {labels: groups[labels] for labels in order}


# -- per-run values -----------------------------------------------------------------------------------------------
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
    values = [v for v in (number(e.get(metric)) for e in entries) if v is not None]
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


def _columns(runs: Sequence[RunRecord], metrics: Sequence[str] | None, generator: str, at: str) -> list[Column]:
    """The eval metric columns (checked and warned about) then the cost columns some run has."""
    present = evaluated_metrics(runs)
    metrics = list(metrics) if metrics is not None else [m for m in DEFAULT_METRICS if m in present]
    unknown = [m for m in metrics if direction(m) == 0]
    if unknown and (at == "best" or generator == "best"):
        option = "--at best" if at == "best" else "--generator best"
        raise GanBenchError(f"{option} needs to know whether higher or lower is better, unknown for "
                            f"{', '.join(unknown)}; use --at last with a named generator for these")
    generators = {e.get("generator") for r in runs for e in r.metrics.get("eval", [])}
    if generator != "best" and generator not in generators:
        warn(f"no run evaluated generator {generator!r} "
             f"(evaluated: {', '.join(sorted(map(str, generators))) or 'nothing'})")
    for m in metrics:
        if m not in present:
            warn(f"no run evaluated metric {m!r} (evaluated: {', '.join(sorted(present)) or 'nothing'})")
    columns = [Column(m, LABELS.get(m, m), "eval", direction(m)) for m in metrics]
    columns += [Column(key, label, "cost", 0, si) for key, (label, si) in COST_COLUMNS.items()
                if any(number(r.metrics.get("cost", {}).get(key)) is not None for r in runs)]
    return columns


def build_report(runs: Sequence[RunRecord], metrics: Sequence[str] | None = None, by: Sequence[str] | None = None,
                 generator: str = "raw", at: str = "best", jobs: Sequence[Job] = ()) -> Report:
    """The grouped table: one row per group, eval metric columns then the cost columns some run has.

    ``runs`` are the finished runs; ``jobs`` every job found: those that did not finish count towards their
    group's launched jobs (with ``by``, those whose config is known) and are listed under the table."""
    columns = _columns(runs, metrics, generator, at)
    unfinished = [j.record for j in jobs if not j.finished and (not by or j.record.metrics.get("config"))]
    finished_ids = {id(r) for r in runs}
    keys, groups = group_runs([*runs, *unfinished], by)
    rows = []
    for labels, members in groups.items():
        done = [r for r in members if id(r) in finished_ids]
        row = Row(labels, len(done), launched=len(members), runs=done)
        for col in columns:
            if col.source == "eval":
                per_run = [eval_value(r.metrics, col.key, generator, at) for r in done]
            else:
                per_run = [number(r.metrics.get("cost", {}).get(col.key)) for r in done]
            row.cells[col.key] = summarize([v for v in per_run if v is not None])
        rows.append(row)
    which = "any generator" if generator == "best" else f"generator {generator}"
    reduce = "best evaluation" if at == "best" else "last evaluation"
    caption = f"mean ± sample std over the n runs of each group; eval metrics at each run's {reduce} ({which})"
    if any(row.n != row.launched for row in rows):
        caption += "; n/N: n of the group's N launched jobs finished (the others are listed below the table)"
    return Report(keys, columns, rows, caption, list(jobs))


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


def _row_start(report: Report, row: Row, plain_n: bool = False) -> list[str]:
    """A row's group labels (``all`` when nothing was swept) and its run count (``n/N`` unless ``plain_n``)."""
    return (list(row.labels) if report.group_keys else ["all"]) + [str(row.n) if plain_n else row.n_text]


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
    """Machine-readable: group labels, n (finished runs), per column ``KEY_mean, KEY_std, KEY_n`` (empty where
    undefined), and ``launched``: the group's jobs, finished or not."""
    def num(x: float) -> str:
        return "" if math.isnan(x) else repr(x)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow((report.group_keys or ["runs"]) + ["n"]
                    + [f"{c.key}_{s}" for c in report.columns for s in ("mean", "std", "n")] + ["launched"])
    for row in report.rows:
        line = _row_start(report, row, plain_n=True)
        for col in report.columns:
            stat = row.cells[col.key]
            line += ["", "", "0"] if stat is None else [num(stat.mean), num(stat.std), str(stat.n)]
        writer.writerow(line + [str(row.launched)])
    return buf.getvalue()


RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_table, "markdown": render_markdown, "latex": render_latex, "csv": render_csv,
}


# -- the jobs that did not finish -----------------------------------------------------------------------------------
def job_label(report: Report, job: Job) -> str:
    """The job's group values and seed, e.g. ``aggregation=hv train.seed=2``."""
    parts = []
    for key in report.group_keys:
        if key in job.record.overrides:
            parts.append(f"{key}={job.record.overrides[key]}")
        else:
            found, value = config_value(job.record.metrics.get("config", {}), key)
            if found:
                parts.append(f"{key}={_label(value)}")
    parts += [f"{k}={v}" for k, v in job.record.overrides.items() if _is_seed(k)]
    return " ".join(parts)


def job_detail(job: Job) -> str:
    """``at iteration 4 of 6: <reason>; resume with: <command>`` (the parts that are known)."""
    text = ""
    if job.iteration is not None:
        text = f"at iteration {job.iteration}" + (f" of {job.iterations}" if job.iterations is not None else "")
    if job.reason:
        text += (": " if text else "") + " ".join(job.reason.split())  # one line, whatever the reason holds
    if job.resume_command and job.state in ("interrupted", "running"):
        text += f"; resume with: {job.resume_command}"
    return text


def _job_rows(report: Report) -> list[tuple[str, str, str, str]]:
    """``(state, folder, group values, detail)`` of the jobs that did not finish, failed ones first."""
    order = {state: i for i, state in enumerate(LISTED_STATES)}
    jobs = sorted(report.others, key=lambda j: order.get(j.state, len(order)))
    return [(j.state, str(j.record.path), job_label(report, j), job_detail(j)) for j in jobs]


def _jobs_heading(report: Report) -> str:
    return f"not in the statistics: {len(report.others)} of {len(report.jobs)} jobs"


def render_jobs_text(report: Report) -> str:
    """The jobs that did not finish, one line each, for under the terminal table ("" if every job finished)."""
    rows = _job_rows(report)
    if not rows:
        return ""
    width = max(len(state) for state, *_ in rows)
    lines = [_jobs_heading(report) + ":"]
    for state, folder, label, detail in rows:
        lines.append("  " + "  ".join(x for x in (f"{state:<{width}}", folder, label, detail) if x))
    return "\n".join(lines) + "\n"


def render_jobs_markdown(report: Report) -> str:
    rows = _job_rows(report)
    if not rows:
        return ""
    lines = [f"**{_jobs_heading(report).capitalize()}:**", ""]
    for state, folder, label, detail in rows:
        text = f"- **{state}** `{folder}`" + (f" ({label})" if label else "") + (f", {detail}" if detail else "")
        lines.append(text.replace("|", "\\|"))
    return "\n".join(lines) + "\n"


def render_jobs_latex(report: Report) -> str:
    """The listing as LaTeX comment lines (so that the file can still be \\input as a table)."""
    text = render_jobs_text(report)
    return "".join(f"% {line}\n" for line in text.splitlines())


JOB_RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_jobs_text, "markdown": render_jobs_markdown, "latex": render_jobs_latex, "csv": render_jobs_text,
}


def render_jobs_csv(report: Report) -> str:
    """Every job of the report, finished or not: ``state, folder, job, group values, iteration, iterations,
    reason, resume_command``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["state", "folder", "job", "group", "iteration", "iterations", "reason", "resume_command"])
    for job in report.jobs:
        writer.writerow([job.state, str(job.record.path), "" if job.number is None else job.number,
                         job_label(report, job), _blank(job.iteration), _blank(job.iterations), job.reason or "",
                         job.resume_command or ""])
    return buf.getvalue()


def _blank(value: Any) -> str:
    return "" if value is None else str(value)

