"""``gan-bench report``: a sweep's runs turned into a paper's table.

* :mod:`~gan_bench.report.collect` finds the runs below the given paths and what became of every job a sweep
  launched (status.json, Hydra's multirun.yaml);
* :mod:`~gan_bench.report.tables` groups the finished runs and renders the statistics (text, markdown, LaTeX, CSV).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan_bench.errors import GanBenchError
from gan_bench.report.collect import Collection, Job, RunRecord, collect, find_runs, load_run, parse_overrides
from gan_bench.report.tables import (DEFAULT_METRICS, FORMATS, JOB_RENDERERS, RENDERERS, SUFFIX_FORMATS, Column,
                                     Report, Row, Stat, build_report, format_stat, rich_table)

__all__ = ["Collection", "Column", "Job", "Report", "Row", "RunRecord", "Stat", "build_report", "collect",
           "find_runs", "format_stat", "load_run", "parse_overrides", "report_main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gan-bench report", description="Turn the runs of sweeps into a table (mean ± "
                                "sample std over seeds per group, plus cost columns) and a list of the jobs that did "
                                "not finish.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="run or sweep folders (searched recursively) or metrics.json files")
    p.add_argument("--metrics", help="comma-separated eval metrics of the table (default: those the runs have among "
                   + ",".join(DEFAULT_METRICS) + ")")
    p.add_argument("--by", help="comma-separated dotted config keys to group by "
                   "(default: the swept overrides, seeds excepted)")
    p.add_argument("--generator", default="raw", help="raw, ema, uniform, or best (the best of all) (default: raw)")
    p.add_argument("--at", choices=("best", "last"), default="best",
                   help="per run, the best evaluation or the last one (default: best)")
    p.add_argument("--format", choices=FORMATS, help="default: table, or from the --output suffix (.md .tex .csv)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the table to FILE (atomically) instead of the "
                   "terminal")
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


def _show_table(report: Report, fmt: str, out: Path | None, force: bool) -> None:
    """The table, and under it the jobs that did not finish (for CSV: on stderr), to ``out`` or the terminal."""
    jobs = JOB_RENDERERS[fmt](report)
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


def report_main(args: list[str]) -> int:
    """``gan-bench report PATH... [--metrics M,..] [--by KEY,..] [--generator G] [--at best|last] [--format F]
    [--output FILE [--force]]``; returns the exit code, raises GanBenchError for user errors."""
    opts = _parser().parse_args(args)
    out = Path(opts.output).expanduser() if opts.output else None
    fmt = opts.format or (SUFFIX_FORMATS.get(out.suffix.lower(), "table") if out else "table")
    collection = collect(opts.paths)
    if not collection.runs:
        raise GanBenchError(f"no finished run found below {', '.join(opts.paths)} ({collection.summary()})")
    report = build_report(collection.runs, _split(opts.metrics), _split(opts.by), opts.generator, opts.at,
                          collection.jobs)
    _show_table(report, fmt, out, opts.force)
    return 0
