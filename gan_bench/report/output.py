"""The report folder (``SWEEP/report/`` by default): report.md, report.csv, report.tex, runs.csv and the figures.

Everything is rendered in memory first; the folder's files are then written one by one, atomically. An existing
file of the same name is never replaced unless ``force``.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from gan_bench.errors import GanBenchError
from gan_bench.report.collect import Collection, load_metrics, number
from gan_bench.report.protocol import result_keys
from gan_bench.report.tables import (
    DEFAULT_METRICS,
    Report,
    direction,
    render_csv,
    render_jobs_csv,
    render_jobs_latex,
    render_jobs_markdown,
    render_latex,
    render_markdown,
    render_notes_latex,
    render_notes_markdown,
)

TABLE_FILES = ("report.md", "report.csv", "report.tex", "runs.csv")
WEIGHTS_FILE = "aggregation_weights.png"


def figure_files(metric: str | None) -> dict[str, str]:
    """Figure kind -> file name (the metric figures only when there is a metric to plot)."""
    files = {"weights": WEIGHTS_FILE}
    if metric:
        files = {"wall_clock": f"{metric}_best_so_far_vs_wall_clock.png", "iteration": f"{metric}_vs_iteration.png",
                 "bars": f"{metric}_per_group.png", **files}
    return files


@dataclass
class Plan:
    """What goes into the folder: the metric of the figures and the run whose weights are drawn, with the reasons
    for what is left out."""

    folder: Path
    metric: str | None
    weights_run: Path | None = None
    weights: tuple | None = None  # read_weights() of weights_run
    aggregation: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(TABLE_FILES) + list(figure_files(self.metric).values())


def default_folder(paths: Sequence[str]) -> Path | None:
    """``PATH/report`` for one sweep or run folder (a file: next to it); None for several paths."""
    if len(paths) != 1:
        return None
    path = Path(paths[0]).expanduser()
    return (path if path.is_dir() else path.parent) / "report"


def figure_metric(report: Report, requested: str | None) -> str | None:
    """The metric of the figures: ``requested`` (an error if no finished run has a value of it, or its better
    direction is unknown), else the first of the default metrics that some run has a value of."""
    present = {k for row in report.rows for r in row.runs for e in r.metrics.get("eval", [])
               for k in result_keys(e) if number(e[k]) is not None}
    if requested is None:
        return next((m for m in DEFAULT_METRICS if m in present), None)
    if requested not in present:
        raise GanBenchError(f"--metric {requested}: no finished run has a value of it "
                            f"(they have: {', '.join(sorted(present)) or 'no evaluation metric'})")
    if direction(requested, [r.metrics for row in report.rows for r in row.runs]) == 0:
        raise GanBenchError(f"--metric {requested}: unknown whether higher or lower is better, so no best-so-far; "
                            f"choose one of {', '.join(m for m in DEFAULT_METRICS if m in present)}")
    return requested


def _aggregation_name(metrics: dict) -> str | None:
    from gan_bench.report.tables import option_name

    section = metrics.get("config", {}).get("aggregation")
    return option_name(section["_target_"]) if isinstance(section, dict) and "_target_" in section else None


def choose_weights(plan: Plan, collection: Collection, requested: str | None) -> None:
    """The run of the weights figure: ``requested`` (an error if it has no weight scalars), else the first finished
    run with K > 1 discriminators whose weights vary (AVG's stay at 1/K), else the first with any weights."""
    from gan_bench.report.figures import discriminator_count, read_weights

    if requested is not None:
        run_dir = Path(requested).expanduser()
        plan.weights_run, plan.weights = run_dir, read_weights(run_dir)
        metrics_file = run_dir / "metrics.json"
        metrics = load_metrics(metrics_file) if metrics_file.is_file() else None
        plan.aggregation = _aggregation_name(metrics or {})
        return
    candidates = [j for j in collection.jobs if j.finished and (discriminator_count(j.record) or 0) > 1]
    fallback = None
    for job in candidates:
        try:
            weights = read_weights(job.record.path)
        except GanBenchError:
            continue
        fallback = fallback or (job, weights)
        if any(np.ptp(values) > 1e-6 for _, values in weights[1].values() if values.size):
            fallback = (job, weights)
            break
    if fallback is None:
        plan.notes.append("no weights figure: " + ("no finished run has K > 1 discriminators" if not candidates
                                                   else "no run with K > 1 has agg/weights or agg/alpha scalars"))
        return
    job, plan.weights = fallback
    plan.weights_run, plan.aggregation = job.record.path, _aggregation_name(job.record.metrics)


def check_folder(folder: Path, names: Sequence[str], force: bool) -> None:
    """An error, before anything is written, if the folder's report files exist and ``force`` is off."""
    if folder.exists() and not folder.is_dir():
        raise GanBenchError(f"report folder {folder} is a file")
    existing = [n for n in names if (folder / n).exists()]
    if existing and not force:
        which = ", ".join(existing[:2]) + (f" and {len(existing) - 2} more" if len(existing) > 2 else "")
        raise GanBenchError(f"{folder} already holds a report ({which}); nothing was written "
                            "(add --force to replace it, or choose another folder with --out DIR)")


def render_figures(report: Report, plan: Plan, generator: str, at: str) -> dict[str, tuple[bytes, str]]:
    """File name -> (PNG, caption) of the figures there is data for; the others are noted in ``plan.notes``."""
    from gan_bench.report import figures as fg

    out: dict[str, tuple[bytes, str]] = {}
    files = figure_files(plan.metric)
    if plan.metric:
        label = fg.name(plan.metric, fg.records_of(report))
        makers = {
            "wall_clock": (lambda: fg.figure_wall_clock(report, plan.metric, generator),
                           f"Best-so-far {label} against training wall-clock seconds; line: mean over the runs of "
                           "each group, band: ± sample std."),
            "iteration": (lambda: fg.figure_iterations(report, plan.metric, generator),
                          f"{label[:1].upper()}{label[1:]} at each evaluation against iteration; line: mean over "
                          "runs, band: ± sample std."),
            "bars": (lambda: fg.figure_bars(report, plan.metric, generator, at),
                     f"{'Best' if at == 'best' else 'Last'} {label} per group: mean over runs, error bar: sample "
                     "std, n: runs with a value (of the jobs launched)."),
        }
        for kind, (make, caption) in makers.items():
            png = make()
            if png is None:
                plan.notes.append(f"no {files[kind]}: no finished run has a {plan.metric} value")
            else:
                out[files[kind]] = (png, caption)
    else:
        plan.notes.append("no metric figures: no finished run has an evaluation metric (eval.metrics)")
    if plan.weights is not None and plan.weights_run is not None:
        png = fg.figure_weights(plan.weights_run, plan.aggregation, plan.weights)
        out[WEIGHTS_FILE] = (png, f"Per-discriminator aggregation weights of run `{plan.weights_run}` against "
                                  "iteration; dashed: uniform 1/K.")
    return out


def render_markdown_report(report: Report, figures: dict[str, tuple[bytes, str]], notes: Sequence[str],
                           command: Sequence[str], summary: str) -> str:
    """report.md: the command, the table with its caption, the values left out and the cells measured under
    different protocols, the jobs not in the statistics, the figures."""
    lines = ["# gan-bench report", "", f"`{shlex.join(['gan-bench', 'report', *command])}`", "",
             f"{summary[:1].upper()}{summary[1:]}.", "", render_markdown(report).rstrip(), "",
             f"*{report.caption}.*", ""]
    protocols = render_notes_markdown(report)
    if protocols:
        lines += [protocols.rstrip(), ""]
    jobs = render_jobs_markdown(report)
    if jobs:
        lines += [jobs.rstrip(), ""]
    if figures or notes:
        lines += ["## Figures", ""]
    for name, (_, caption) in figures.items():
        lines += [f"![{name}]({name})", "", caption, ""]
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def render_files(report: Report, plan: Plan, collection: Collection, generator: str, at: str,
                 command: Sequence[str]) -> dict[str, bytes]:
    """Every file of the folder, rendered."""
    figures = render_figures(report, plan, generator, at)
    md = render_markdown_report(report, figures, plan.notes, command, collection.summary())
    files = {"report.md": md, "report.csv": render_csv(report),
             "report.tex": render_latex(report) + render_notes_latex(report) + render_jobs_latex(report),
             "runs.csv": render_jobs_csv(report)}
    out = {name: text.encode() for name, text in files.items()}
    out.update({name: png for name, (png, _) in figures.items()})
    return out


def write_folder(folder: Path, files: dict[str, bytes], force: bool) -> None:
    """Each file atomically (checked again just before: nothing existing is replaced without ``force``)."""
    from gan_bench.files import atomic_write_bytes

    check_folder(folder, list(files), force)
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
