"""The report's table: finished runs grouped, statistics per group, rendered as text, markdown, LaTeX or CSV.

Runs are grouped by the swept keys (the overrides that differ between runs, seeds excepted, or ``--by`` config keys);
each cell is ``mean ± s`` over the runs of a group, with ``s`` the sample standard deviation (ddof = 1) and the number
of runs ``n`` shown. An evaluation metric is reduced per run first: its best value over the run's evaluations
(``--at best``: min for FID/KID, max for IS, coverage, precision, recall, as each metric declares; see
:func:`key_info`) or its value at the last evaluation (``--at last``). The cost columns follow Table 2 of
Albuquerque et al., "Multi-objective training of Generative Adversarial Networks with multiple discriminators"
(ICML 2019): FLOPs per iteration, parameters of all discriminators, peak memory, seconds per iteration and wall
clock to the best FID.

Jobs that did not finish (see :mod:`gan_bench.report.collect`) count towards their group's number of launched jobs
(the ``n`` column reads ``n/N`` when fewer than N launched jobs finished) and are listed under the table.

Only values measured under one protocol are compared (:func:`~gan_bench.report.protocol.select_protocol`): by default
each run's values measured as its training measured them, with ``--protocol KEY=VALUE`` those whose protocol has
KEY = VALUE. The values left out are listed under the table with the reason; a cell whose runs' values were still
measured differently (e.g. two seeds trained with different ``eval.n_samples``) is marked ``≠`` and explained there.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from gan_bench.errors import GanBenchError
from gan_bench.report.collect import LISTED_STATES, Job, RunRecord, natural_key, number, warn
from gan_bench.report.protocol import Protocol, Selection, canonical, result_keys, select_protocol, show

if TYPE_CHECKING:
    from rich.table import Table

MISSING = "–"
DIFFERS = "≠"  # marks a cell whose values were measured under different protocols
# the evaluation metrics shown by default (those present in at least one run), in this order
DEFAULT_METRICS = ("fid", "fid_classifier", "kid_mean", "is_mean", "precision", "recall", "modes_covered",
                   "high_quality", "mode_kl", "modes_covered_stacked", "mode_kl_stacked")
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
    differs: dict[str, str] = field(default_factory=dict)  # eval column key -> how its values' protocols differ

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
    selection: Selection | None = None  # which values were compared (None: every value, as recorded)
    notes: list[str] = field(default_factory=list)  # the values left out and the cells marked DIFFERS, explained

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


# -- which way is better -------------------------------------------------------------------------------------------
def key_info(metric: str, records: Iterable[Mapping[str, Any]] = ()) -> Mapping[str, Any] | None:
    """``{"direction": "lower" | "higher" | None, "label": ...}`` of a result key: as recorded in the first of the
    runs' metrics.json ``records`` holding it (``metric_keys``: a plug-in metric's too, without importing it), else
    as the metric registry declares it (runs made before metrics.json recorded ``metric_keys``; the registry is
    imported only then); None when neither knows the key."""
    for record in records:
        keys = record.get("metric_keys") if isinstance(record, Mapping) else None
        info = keys.get(metric) if isinstance(keys, Mapping) else None
        if isinstance(info, Mapping):
            return info
    from gan_bench.metrics.registry import key_info as registered

    return registered(metric)


def direction(metric: str, records: Iterable[Mapping[str, Any]] = ()) -> int:
    """+1 if a higher value is better, -1 if lower is better, 0 if neither or unknown (see :func:`key_info`)."""
    info = key_info(metric, records) or {}
    return {"higher": 1, "lower": -1}.get(info.get("direction"), 0)  # type: ignore[arg-type]


def label(metric: str, records: Iterable[Mapping[str, Any]] = ()) -> str:
    """The short label of a result key (``FID``), the key itself when none is known (see :func:`key_info`)."""
    text = (key_info(metric, records) or {}).get("label")
    return text if isinstance(text, str) and text else metric


# -- per-run values -----------------------------------------------------------------------------------------------
def eval_pick(metrics: dict[str, Any], metric: str, generator: str, at: str, better: int | None = None
              ) -> tuple[float | None, list[dict[str, Any]]]:
    """:func:`eval_value`, and the evaluation entries the value was chosen from (with ``at="best"`` or
    ``generator="best"``: every candidate; else the one)."""
    entries = [e for e in metrics.get("eval", []) if (generator == "best" or e.get("generator") == generator)
               and number(e.get(metric)) is not None]
    if not entries:
        return None, []
    if at == "last":
        last_iter = max(e["iteration"] for e in entries)
        entries = [e for e in entries if e["iteration"] == last_iter]
        if generator != "best":
            return number(entries[-1][metric]), entries[-1:]
    better = direction(metric, (metrics,)) if better is None else better
    values = [number(e[metric]) for e in entries]
    return (max(values) if better > 0 else min(values)), entries  # type: ignore[type-var]


def eval_value(metrics: dict[str, Any], metric: str, generator: str, at: str, better: int | None = None
               ) -> float | None:
    """One run's value of an evaluation metric for ``generator`` (a name, or ``best`` = any generator):
    ``at="best"``: the best over all its evaluations of it; ``at="last"``: at its last evaluation of it (for
    ``generator="best"`` the best generator there). None if the run never evaluated it. ``better``: +1 / -1 when
    higher / lower is better (default: :func:`direction` from the run's own record, then the registry)."""
    return eval_pick(metrics, metric, generator, at, better)[0]


def summarize(values: Sequence[float]) -> Stat | None:
    """Mean and sample standard deviation (ddof = 1; NaN for a single value) of a cell's per-run values."""
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    return Stat(float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan, int(arr.size))


# -- the table ----------------------------------------------------------------------------------------------------
def evaluated_metrics(runs: Sequence[RunRecord]) -> set[str]:
    """The result keys found in any evaluation of any run (numbers or nulls; not its iteration, time, generator,
    protocol, source or checkpoint)."""
    return {k for r in runs for e in r.metrics.get("eval", []) for k in result_keys(e)}


def _columns(runs: Sequence[RunRecord], metrics: Sequence[str] | None, generator: str, at: str,
             selection: Selection | None = None) -> list[Column]:
    """The eval metric columns (checked and warned about) then the cost columns some run has; ``selection``: the
    result keys and generators the runs had before it (default: those they have)."""
    present = evaluated_metrics(runs) if selection is None else selection.evaluated
    metrics = list(metrics) if metrics is not None else [m for m in DEFAULT_METRICS if m in present]
    records = [r.metrics for r in runs]
    signs = {m: direction(m, records) for m in metrics}
    unknown = [m for m in metrics if signs[m] == 0]
    if unknown and (at == "best" or generator == "best"):
        option = "--at best" if at == "best" else "--generator best"
        raise GanBenchError(f"{option} needs to know whether higher or lower is better, unknown for "
                            f"{', '.join(unknown)}; use --at last with a named generator for these")
    generators = ({e.get("generator") for r in runs for e in r.metrics.get("eval", [])} if selection is None
                  else selection.generators)
    if generator != "best" and generator not in generators:
        warn(f"no run evaluated generator {generator!r} "
             f"(evaluated: {', '.join(sorted(map(str, generators))) or 'nothing'})")
    for m in metrics:
        if m not in present:
            warn(f"no run evaluated metric {m!r} (evaluated: {', '.join(sorted(present)) or 'nothing'})")
    columns = [Column(m, label(m, records), "eval", signs[m]) for m in metrics]
    columns += [Column(key, label, "cost", 0, si) for key, (label, si) in COST_COLUMNS.items()
                if any(number(r.metrics.get("cost", {}).get(key)) is not None for r in runs)]
    return columns


def build_report(runs: Sequence[RunRecord], metrics: Sequence[str] | None = None, by: Sequence[str] | None = None,
                 generator: str = "raw", at: str = "best", jobs: Sequence[Job] = (),
                 protocol: dict[str, str] | None = None) -> Report:
    """The grouped table: one row per group, eval metric columns then the cost columns some run has.

    ``runs`` are the finished runs; ``jobs`` every job found: those that did not finish count towards their
    group's launched jobs (with ``by``, those whose config is known) and are listed under the table. Only the values
    of one protocol are compared (:func:`~gan_bench.report.protocol.select_protocol`: each run's training protocol,
    or ``protocol``'s KEY = VALUE); the report's rows hold the selected copies of the runs."""
    runs, selection = select_protocol(runs, protocol)
    columns = _columns(runs, metrics, generator, at, selection)
    unfinished = [j.record for j in jobs if not j.finished and (not by or j.record.metrics.get("config"))]
    finished_ids = {id(r) for r in runs}
    keys, groups = group_runs([*runs, *unfinished], by)
    rows = []
    for labels, members in groups.items():
        done = [r for r in members if id(r) in finished_ids]
        row = Row(labels, len(done), launched=len(members), runs=done)
        for col in columns:
            if col.source == "eval":
                picks = [eval_pick(r.metrics, col.key, generator, at, col.direction) for r in done]
                per_run = [v for v, _ in picks]
                differs = protocol_difference([selection.measured(e, col.key) for _, used in picks for e in used])
                if differs:
                    row.differs[col.key] = differs
            else:
                per_run = [number(r.metrics.get("cost", {}).get(col.key)) for r in done]
            row.cells[col.key] = summarize([v for v in per_run if v is not None])
        rows.append(row)
    which = "any generator" if generator == "best" else f"generator {generator}"
    reduce = "best evaluation" if at == "best" else "last evaluation"
    caption = (f"mean ± sample std over the n runs of each group; eval metrics at each run's {reduce} ({which}), "
               f"{selection.describe()}")
    if any(row.n != row.launched for row in rows):
        caption += "; n/N: n of the group's N launched jobs finished (the others are listed below the table)"
    if any(row.differs for row in rows):
        caption += f"; {DIFFERS}: values measured under different protocols (see below the table)"
    report = Report(keys, columns, rows, caption, list(jobs), selection)
    report.notes = protocol_notes(report, [c.key for c in columns if c.source == "eval"], generator)
    return report


# -- protocols: what was left out, which cells mix them ------------------------------------------------------------
def protocol_difference(protocols: Sequence[Protocol | None]) -> str | None:
    """``"protocols differ in n_fake (5000, 10000)"`` when the known ``protocols`` are not all one; else None."""
    known = [p for p in protocols if p is not None]
    if len({canonical(p) for p in known}) < 2:
        return None
    names = list(dict.fromkeys(m for p in known for m in p))
    parts = []
    for m in names:
        subs = [p.get(m) for p in known]
        if any(sub is None for sub in subs):
            parts.append(f"{m} (recorded by some, not others)")
            continue
        for k in dict.fromkeys(k for sub in subs for k in sub):
            values = {canonical(sub[k]) if k in sub else "": show(sub[k]) if k in sub else "none" for sub in subs}
            if len(values) > 1:
                text = ", ".join(sorted(values.values(), key=natural_key))
                parts.append(f"{m + '.' if len(names) > 1 else ''}{k} ({text})")
    return "protocols differ in " + ("; ".join(parts) or "their metrics")


def _runs_text(paths: Sequence[str], limit: int = 8) -> str:
    """``sweep/{0, 1, 4}`` for runs of one folder, else the paths (the first ``limit``, then how many more)."""
    more = f", … {len(paths) - limit} more" if len(paths) > limit else ""
    parents = {str(Path(p).parent) for p in paths}
    if len(paths) > 1 and len(parents) == 1:
        return f"{str(Path(paths[0]).parent).rstrip('/')}/{{{', '.join(Path(p).name for p in paths[:limit])}{more}}}"
    return ", ".join(paths[:limit]) + more


def protocol_notes(report: Report, keys: Sequence[str], generator: str) -> list[str]:
    """One line per reason for the values of ``keys`` left out (with the runs it concerns), the runs left without
    a value of a key, and one line per cell marked :data:`DIFFERS`."""
    selection = report.selection
    lines: list[str] = []
    if selection is not None:
        wanted = [lo for lo in selection.left_out
                  if lo.key in keys and (generator == "best" or lo.generator == generator)]
        per_entry: dict[tuple[str, int], dict[str, list[str]]] = {}  # (run, entry) -> reason -> its metrics
        for lo in wanted:
            metrics = per_entry.setdefault((str(lo.run), lo.entry), {}).setdefault(lo.reason, [])
            if lo.metric not in metrics:
                metrics.append(lo.metric)
        by_reason: dict[str, dict[str, int]] = {}  # the reasons of an entry -> run -> its entries left out so
        for (run, _), reasons in per_entry.items():
            text = "; ".join(f"{', '.join(metrics)}: {reason}" for reason, metrics in reasons.items())
            counts = by_reason.setdefault(text, {})
            counts[run] = counts.get(run, 0) + 1
        for reason, per_run in by_reason.items():
            n = sum(per_run.values())
            what = f"{n} evaluation{'s' * (n != 1)}"
            if len(per_run) == 1:
                lines.append(f"left out {what} of {next(iter(per_run))} ({reason})")
            else:
                lines.append(f"left out {what} of {len(per_run)} runs ({reason}): {_runs_text(list(per_run))}")
        runs = {str(r.path): r for row in report.rows for r in row.runs}
        lost: dict[tuple[str, ...], list[str]] = {}  # the runs left without a value of a key -> those keys
        for key in keys:
            paths = list(dict.fromkeys(str(lo.run) for lo in wanted if lo.key == key))
            paths = [p for p in paths if p in runs and eval_value(runs[p].metrics, key, generator, "last", 1) is None]
            if paths:
                lost.setdefault(tuple(paths), []).append(key)
        for paths, lost_keys in lost.items():
            what = ", ".join(lost_keys)
            lines.append(f"no {what} value under the selected protocol for {len(paths)} run{'s' * (len(paths) != 1)} "
                         f"(all their evaluations of it were left out): {_runs_text(list(paths))}")
    for row in report.rows:
        for col in report.columns:
            if col.key in row.differs and col.key in keys:
                group = ", ".join(f"{k}={v}" for k, v in zip(report.group_keys, row.labels)) or "all runs"
                lines.append(f"{DIFFERS} {group}, {col.label}: {row.differs[col.key]}; its mean mixes them")
    return lines


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


def _cells(report: Report, cell: Callable[[Stat, Column, int, bool], Any], missing: str,
           mark: Callable[[Any], Any] = lambda text: f"{text} {DIFFERS}") -> list[list[Any]]:
    """Body rows: group labels, n, then each column via ``cell(stat, column, group n, is best)``; ``mark`` marks
    a cell whose values were measured under different protocols."""
    best = _best_means(report)
    body = []
    for row in report.rows:
        line = _row_start(report, row)
        for col in report.columns:
            stat = row.cells[col.key]
            text = missing if stat is None else cell(stat, col, row.n, best.get(col.key) == stat.mean)
            line.append(mark(text) if stat is not None and col.key in row.differs else text)
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

    def mark(text: Text) -> Text:
        return Text.assemble(text, f" {DIFFERS}")

    for line in _cells(report, cell, MISSING, mark):
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
    body = [[latex_escape(x) if i < n_left else x for i, x in enumerate(line)]
            for line in _cells(report, cell, "--", lambda text: text + r"\textsuperscript{$\neq$}")]
    lines = [f"% gan-bench report: {report.caption}".replace("±", "+/-"),
             r"\begin{tabular}{" + "l" * n_left + "r" * (len(heads) - n_left) + "}", r"\toprule",
             " & ".join(heads) + r" \\", r"\midrule"]
    lines += [" & ".join(line) + r" \\" for line in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    """Machine-readable: group labels, n (finished runs), per column ``KEY_mean, KEY_std, KEY_n`` (empty where
    undefined), ``launched``: the group's jobs, finished or not, and ``protocols_differ``: for the cells whose
    values were measured under different protocols, ``KEY: how`` (empty for none)."""
    def num(x: float) -> str:
        return "" if math.isnan(x) else repr(x)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow((report.group_keys or ["runs"]) + ["n"]
                    + [f"{c.key}_{s}" for c in report.columns for s in ("mean", "std", "n")]
                    + ["launched", "protocols_differ"])
    for row in report.rows:
        line = _row_start(report, row, plain_n=True)
        for col in report.columns:
            stat = row.cells[col.key]
            line += ["", "", "0"] if stat is None else [num(stat.mean), num(stat.std), str(stat.n)]
        differs = "; ".join(f"{c.key}: {row.differs[c.key]}" for c in report.columns if c.key in row.differs)
        writer.writerow(line + [str(row.launched), differs])
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


# -- the protocol notes ---------------------------------------------------------------------------------------------
def _notes_heading(report: Report) -> str:
    return f"protocols ({report.selection.describe() if report.selection else 'every value as recorded'})"


def render_notes_text(report: Report) -> str:
    """The values left out and the cells marked DIFFERS, one line each ("" if there is nothing to say)."""
    if not report.notes:
        return ""
    return "\n".join([_notes_heading(report) + ":", *(f"  {line}" for line in report.notes)]) + "\n"


def render_notes_markdown(report: Report) -> str:
    if not report.notes:
        return ""
    lines = [f"**{_notes_heading(report).capitalize()}:**", ""]
    lines += [f"- {line}".replace("|", "\\|") for line in report.notes]
    return "\n".join(lines) + "\n"


def render_notes_latex(report: Report) -> str:
    """The notes as LaTeX comment lines (the marked cells carry a visible $\\neq$)."""
    return "".join(f"% {line}\n" for line in render_notes_text(report).splitlines())


NOTE_RENDERERS: dict[str, Callable[[Report], str]] = {
    "table": render_notes_text, "markdown": render_notes_markdown, "latex": render_notes_latex,
    "csv": render_notes_text,
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

