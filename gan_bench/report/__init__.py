"""``gan-bench report``: a sweep's runs turned into a paper's tables and figures.

* :mod:`~gan_bench.report.collect` finds the runs below the given paths and what became of every job a sweep
  launched (status.json, Hydra's multirun.yaml);
* :mod:`~gan_bench.report.tables` groups the finished runs and renders the statistics (text, markdown, LaTeX, CSV);
* :mod:`~gan_bench.report.figures` draws the figures, :mod:`~gan_bench.report.output` writes the report folder;
* :mod:`~gan_bench.report.hparams` records a run's hyperparameters and metrics for TensorBoard's HParams tab.

Only values measured under one protocol are compared: by default each run's values measured as its training
measured them (``gan-bench eval RUN eval.n_samples=2000`` on a run trained with 10,000 does not enter its row), with
``--protocol KEY=VALUE`` those whose protocol has KEY = VALUE; what is left out is listed under the table, and a cell
whose runs were measured differently is marked ``≠``.

The table is printed (or written to ``--output FILE``); unless ``--no-files`` (or ``--output`` without ``--out``),
``report.md``, ``report.csv``, ``report.tex``, ``runs.csv`` and the PNG figures are written to ``SWEEP/report/``
(or ``--out DIR``), never over existing files unless ``--force``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan_bench.errors import GanBenchError
from gan_bench.report.collect import Collection, Job, RunRecord, collect, find_runs, load_run, parse_overrides
from gan_bench.report.tables import (
    DEFAULT_METRICS,
    FORMATS,
    JOB_RENDERERS,
    NOTE_RENDERERS,
    RENDERERS,
    SUFFIX_FORMATS,
    Column,
    Report,
    Row,
    Stat,
    build_report,
    format_stat,
    protocol_notes,
    rich_table,
)

__all__ = ["Collection", "Column", "Job", "Report", "Row", "RunRecord", "Stat", "build_report", "collect",
           "find_runs", "format_stat", "load_run", "parse_overrides", "report_main"]


REPORT_EXAMPLE = """examples:
  gan-bench report multirun/2026-12-01/10-00-00                 table + figures into that sweep's report/
  gan-bench report multirun/a multirun/b --by discriminators.count --out paper/
  gan-bench report SWEEP --metrics fid,is --at last --output table.md --no-files
  gan-bench report SWEEP --protocol n_fake=2000                 what `gan-bench eval RUN eval.n_samples=2000` added"""


def _parser() -> argparse.ArgumentParser:
    from gan_bench.commands import Parser

    p = Parser(prog="gan-bench report", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=REPORT_EXAMPLE,
               description="Turn the runs of sweeps into a table (mean ± "
                                "sample std over seeds per group, plus cost columns), figures and a list of the jobs "
                                "that did not finish; written to SWEEP/report/ as report.md/.csv/.tex and PNGs.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="run or sweep folders (searched recursively) or metrics.json files")
    p.add_argument("--metrics", help="comma-separated eval metrics of the table (default: those the runs have among "
                   + ",".join(DEFAULT_METRICS) + ")")
    p.add_argument("--by", help="comma-separated dotted config keys to group by "
                   "(default: the swept overrides, seeds excepted)")
    p.add_argument("--generator", default="raw", help="raw, ema, uniform, or best (the best of all) (default: raw)")
    p.add_argument("--at", choices=("best", "last"), default="best",
                   help="per run, the best evaluation or the last one (default: best)")
    p.add_argument("--until", type=int, metavar="ITERATION", help="only the evaluations at or before ITERATION: "
                   "runs of different lengths compared at one budget (the cost columns and the aggregation "
                   "weights figure stay the whole runs')")
    p.add_argument("--protocol", action="append", default=[], metavar="KEY=VALUE",
                   help="compare the values whose protocol (metrics.json: each evaluation's 'protocol', per "
                        "metric) has KEY = VALUE, e.g. n_fake=2000 or split=test, for every metric whose protocol has "
                        "KEY (VALUE read as JSON where it parses); repeatable, all must hold (default: each run's "
                        "values measured as its training measured them; what is left out is listed with the reason)")
    p.add_argument("--format", choices=FORMATS, help="default: table, or from the --output suffix (.md .tex .csv)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the table to FILE (atomically) instead of the "
                   "terminal; no report folder then, unless --out is given too")
    p.add_argument("--out", metavar="DIR", help="the report folder (default: PATH/report for a single PATH; "
                   "with several PATHs only where given)")
    p.add_argument("--metric", help="the metric of the figures (default: fid, else the first the runs have among "
                   + ",".join(DEFAULT_METRICS) + ")")
    p.add_argument("--weights-run", metavar="RUN_DIR", help="the run whose per-discriminator aggregation weights "
                   "are drawn (default: the first finished run with K > 1 discriminators whose weights vary, else the "
                   "first with K > 1)")
    p.add_argument("--no-files", action="store_true", help="only print the table: no report folder")
    p.add_argument("--force", action="store_true", help="let --output and the report folder replace existing files")
    return p


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise GanBenchError(f"expected a comma-separated list, got {text!r}")
    return items


def parse_protocol(items: list[str]) -> dict[str, str]:
    """``--protocol KEY=VALUE`` options as ``{KEY: VALUE}``; an error for one without ``=`` or a KEY given twice."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise GanBenchError(f"--protocol {item!r}: expected KEY=VALUE, e.g. --protocol n_fake=2000")
        if key in out:
            raise GanBenchError(f"--protocol {key} given twice ({out[key]}, {value}); give each KEY once")
        out[key] = value.strip()
    return out


def write_output(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` atomically (temp file + os.replace); an existing file only with ``force``."""
    from gan_bench.files import atomic_write_bytes

    if path.is_dir():
        raise GanBenchError(f"--output {path} is a folder")
    if path.exists() and not force:
        raise GanBenchError(f"{path} already exists; nothing was written (add --force to replace it)")
    atomic_write_bytes(path, text.encode())


def _report_folder(opts: argparse.Namespace) -> Path | None:
    from gan_bench.report.output import default_folder

    if opts.no_files:
        return None
    if opts.out:
        return Path(opts.out).expanduser()
    if opts.output:
        return None
    folder = default_folder(opts.paths)
    if folder is None:
        print("gan-bench: note: several PATHs, so no report folder was written (choose one with --out DIR)",
              file=sys.stderr)
    return folder


def _show_table(report: Report, fmt: str, out: Path | None, force: bool) -> None:
    """The table, and under it the protocol notes and the jobs that did not finish (for CSV: on stderr), to ``out``
    or the terminal."""
    notes = NOTE_RENDERERS[fmt](report)
    jobs = JOB_RENDERERS[fmt](report)
    jobs = notes + ("\n" if notes and jobs else "") + jobs
    table = RENDERERS[fmt](report)
    if fmt == "csv":
        print(jobs, end="", file=sys.stderr)
        jobs = ""
    if out is not None:
        write_output(out, table + ("\n" + jobs if jobs else ""), force)
        print(f"wrote {out} ({sum(r.n for r in report.rows)} runs, {len(report.rows)} groups)", file=sys.stderr)
    elif fmt == "table" and sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich_table(report))
        print(jobs, end="")
    else:
        print(table + ("\n" + jobs if jobs else ""), end="")


def _until(collection: Collection, until: int) -> None:
    """Drop every run's evaluations after iteration ``until`` (in the records of this report only)."""
    if until < 0:
        raise GanBenchError(f"--until {until}: an iteration is 0 or more")
    first = min((e["iteration"] for r in collection.runs for e in r.metrics.get("eval", [])), default=None)
    if first is None or first > until:
        where = f"the first is at iteration {first}" if first is not None else "none has any"
        raise GanBenchError(f"--until {until}: no finished run has an evaluation at or before iteration {until} "
                            f"({where})")
    for job in collection.jobs:
        metrics = job.record.metrics
        if metrics.get("eval"):
            job.record.metrics = {**metrics, "eval": [e for e in metrics["eval"] if e["iteration"] <= until]}


def report_main(args: list[str]) -> int:
    """``gan-bench report PATH... [--metrics M,..] [--by KEY,..] [--generator G] [--at best|last] [--until IT]
    [--protocol KEY=VALUE].. [--format F] [--output FILE] [--out DIR] [--metric M] [--weights-run RUN_DIR]
    [--no-files] [--force]``; returns
    the exit code, raises GanBenchError for user errors (before anything is written)."""
    from gan_bench.report import output

    opts = _parser().parse_args(args)
    protocol = parse_protocol(opts.protocol)
    out = Path(opts.output).expanduser() if opts.output else None
    fmt = opts.format or (SUFFIX_FORMATS.get(out.suffix.lower(), "table") if out else "table")
    collection = collect(opts.paths)
    if not collection.runs:
        raise GanBenchError(f"no finished run found below {', '.join(opts.paths)} ({collection.summary()})")
    if opts.until is not None:
        _until(collection, opts.until)
    report = build_report(collection.runs, _split(opts.metrics), _split(opts.by), opts.generator, opts.at,
                          collection.jobs, protocol)
    if opts.until is not None:
        report.caption += f"; only evaluations up to iteration {opts.until} (cost columns: the whole runs)"
    folder = _report_folder(opts)
    plan = None
    if folder is not None:
        plan = output.Plan(folder, output.figure_metric(report, opts.metric))
        if plan.metric and plan.metric not in {c.key for c in report.columns}:  # the figures' values left out too
            report.notes += [n for n in protocol_notes(report, [plan.metric], opts.generator) if n not in report.notes]
        output.choose_weights(plan, collection, opts.weights_run)
        output.check_folder(folder, plan.names, opts.force)
    _show_table(report, fmt, out, opts.force)
    if plan is not None:
        files = output.render_files(report, plan, collection, opts.generator, opts.at, args)
        output.write_folder(plan.folder, files, opts.force)
        notes = f" ({'; '.join(plan.notes)})" if plan.notes else ""
        print(f"wrote {plan.folder}: {', '.join(files)}{notes}", file=sys.stderr)
    return 0
