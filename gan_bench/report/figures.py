"""The report's figures (matplotlib, Agg canvas, no pyplot state), one function per figure, each returning PNG bytes.

* best-so-far metric against training wall-clock seconds per group, mean ± std over the group's runs (the figure of
  Albuquerque et al., ICML 2019, comparing multi-discriminator aggregations at equal compute);
* the metric against iteration per group, mean ± std over the runs;
* each group's per-run best (or last) metric as a bar: mean, error bar = sample std, ``n`` written above;
* one run's per-discriminator aggregation weights (``agg/weights/k``, or MGD's ``agg/alpha/k``) over iterations,
  read from its TensorBoard event files.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from gan_bench.errors import GanBenchError
from gan_bench.report.collect import RunRecord, number
from gan_bench.report.tables import Report, Row, direction, eval_value, label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIG_SIZE = (8.0, 5.0)  # inches
DPI = 120  # -> 960 x 600 pixels
PIXELS = (round(FIG_SIZE[0] * DPI), round(FIG_SIZE[1] * DPI))
# fuller names than the table's column labels (the metrics' declared labels), for axis labels and titles
NAMES = {"modes_covered": "modes covered", "high_quality": "high-quality samples",
         "modes_covered_stacked": "Stacked-MNIST modes covered (of 1,000)", "mode_kl_stacked": "Stacked-MNIST mode KL"}
UNITS = {"modes_covered": "count", "high_quality": "fraction of samples", "precision": "fraction",
         "recall": "fraction", "modes_covered_stacked": "count", "mode_kl_stacked": "nats"}
WEIGHT_TAG = re.compile(r"^agg/(weights|alpha)/(\d+)$")
LEGEND_INSIDE_MAX = 5  # more groups than this: the legend goes outside the axes, to the right


@dataclass
class Band:
    """One group's curve: x, mean and sample std (NaN where fewer than 2 runs) of the runs defined at each x."""

    label: str
    color: Any
    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    dashed: bool = False  # groups beyond the 10th: light colours, dashed lines


# -- shared pieces ------------------------------------------------------------------------------------------------
def _figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIG_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    return fig, ax


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


Records = Iterable[Mapping[str, Any]]  # runs' metrics.json contents: where a key's direction and label are read


def records_of(report: Report) -> list[dict[str, Any]]:
    """The metrics.json contents of the report's finished runs (their ``metric_keys``: directions and labels)."""
    return [r.metrics for row in report.rows for r in row.runs]


def metric_label(metric: str, with_direction: bool = True, records: Records = ()) -> str:
    """``FID (lower is better)``, ``modes (count, higher is better)``."""
    records = list(records)
    notes = [UNITS[metric]] if metric in UNITS else []
    d = direction(metric, records)
    if with_direction and d:
        notes.append("higher is better" if d > 0 else "lower is better")
    return name(metric, records) + (f" ({', '.join(notes)})" if notes else "")


def name(metric: str, records: Records = ()) -> str:
    """The metric's full name for axes and titles: :data:`NAMES`, else its declared label."""
    return NAMES.get(metric) or label(metric, records)


def group_name(report: Report, row: Row) -> str:
    """A group's legend entry: its values (the keys go into the legend's title)."""
    return ", ".join(row.labels) if report.group_keys else "all runs"


def legend_title(report: Report) -> str | None:
    return ", ".join(report.group_keys) or None


def _colors(n: int) -> list[Any]:
    """Distinct colours: tab10 up to 10; beyond, tab20's dark shades first, then its light ones."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    tab20 = colormaps["tab20"]
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return [tab20(order[i % 20]) for i in range(n)]


def _legend(fig: Figure, ax: Axes, n_entries: int, title: str | None = None) -> None:
    """Inside the axes for a few entries, else to the right of them (below the title)."""
    if n_entries <= LEGEND_INSIDE_MAX:
        ax.legend(loc="best", fontsize="small", title=title, title_fontsize="small")
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize="small", title=title,
                  title_fontsize="small")


def _y_axis(ax: Axes, metric: str, values: Sequence[float], records: Records = ()) -> None:
    """A log y axis for FID-like metrics spanning a decade or more (all positive); counts and fractions on a
    linear axis from 0 (whole-number ticks for counts)."""
    from matplotlib.ticker import MaxNLocator

    vals = np.asarray([v for v in values if np.isfinite(v)])
    if direction(metric, records) < 0 and vals.size and vals.min() > 0 and vals.max() / vals.min() >= 10:
        from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    elif UNITS.get(metric) == "count":
        top = max(1.0, float(vals.max()) * 1.08 if vals.size else 1.0)
        ax.set_ylim(-0.02 * top, top)  # a line at 0 stays visible above the axis
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    elif UNITS.get(metric, "").startswith("fraction"):
        top = max(0.05, min(1.0, float(vals.max()) * 1.08)) if vals.size else 1.0
        ax.set_ylim(-0.02 * top, top)


def _band(ax: Axes, band: Band, step: bool) -> None:
    where = {"drawstyle": "steps-post"} if step else {"marker": "o", "markersize": 3}
    ax.plot(band.x, band.mean, color=band.color, label=band.label, linestyle="--" if band.dashed else "-", **where)
    ok = np.isfinite(band.std)
    if ok.any():
        lo, hi = band.mean - np.where(ok, band.std, 0), band.mean + np.where(ok, band.std, 0)
        ax.fill_between(band.x, lo, hi, where=ok, color=band.color, alpha=0.15, linewidth=0,
                        step="post" if step else None)


def _mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and sample std over the finite entries of ``values`` [runs, points] (NaN std below 2)."""
    counts = np.isfinite(values).sum(axis=0)
    filled = np.where(np.isfinite(values), values, 0.0)
    mean = filled.sum(axis=0) / np.maximum(counts, 1)
    sq = np.where(np.isfinite(values), (values - mean) ** 2, 0.0).sum(axis=0)
    std = np.where(counts > 1, np.sqrt(sq / np.maximum(counts - 1, 1)), np.nan)
    return np.where(counts > 0, mean, np.nan), std


# -- per-run series -----------------------------------------------------------------------------------------------
def eval_series(metrics: dict[str, Any], metric: str, generator: str) -> list[tuple[float, float, float]]:
    """``(iteration, wall_clock_s, value)`` per evaluation of one run, in iteration order; with ``generator="best"``
    the best generator at each evaluation."""
    points: dict[float, tuple[float, float]] = {}
    for e in metrics.get("eval", []):
        value = number(e.get(metric))
        if value is None or (generator != "best" and e.get("generator") != generator):
            continue
        it = float(e["iteration"])
        clock = number(e.get("wall_clock_s"))
        clock = math.nan if clock is None else clock
        if it in points and generator == "best" and direction(metric, (metrics,)) * (points[it][1] - value) > 0:
            continue  # the one there is better
        points[it] = (clock, value)
    return [(it, clock, value) for it, (clock, value) in sorted(points.items())]


def best_so_far(series: list[tuple[float, float, float]], metric: str, better: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock times and the best value reached by then (evaluations without a time left out); ``better``: +1
    / -1 when higher / lower is better (default: the registry's direction of ``metric``)."""
    pts = sorted((t, v) for _, t, v in series if np.isfinite(t))
    if not pts:
        return np.empty(0), np.empty(0)
    t, v = np.array(pts).T
    better = direction(metric) if better is None else better
    best = np.maximum.accumulate(v) if better > 0 else np.minimum.accumulate(v)
    return t, best


def _generator_text(generator: str) -> str:
    return "best generator at each evaluation" if generator == "best" else f"generator {generator}"


def _n_text(k: int, row: Row) -> str:
    return f"n={k}" if k == row.launched else f"n={k}/{row.launched}"


# -- (a) best-so-far against wall clock -----------------------------------------------------------------------------
def wall_clock_bands(report: Report, metric: str, generator: str) -> list[Band]:
    """Per group, the best-so-far value on the union of its runs' evaluation times, from the time every run has
    been evaluated once; a run that finished earlier keeps its best."""
    bands = []
    better = direction(metric, records_of(report))
    for i, (row, color) in enumerate(zip(report.rows, _colors(len(report.rows)))):
        curves = [best_so_far(eval_series(r.metrics, metric, generator), metric, better) for r in row.runs]
        curves = [c for c in curves if c[0].size]
        if not curves:
            continue
        start = max(t[0] for t, _ in curves)
        grid = np.unique(np.concatenate([t for t, _ in curves]))
        grid = grid[grid >= start]
        values = np.stack([best[np.searchsorted(t, grid, side="right") - 1] for t, best in curves])
        mean, std = _mean_std(values)
        bands.append(Band(f"{group_name(report, row)} ({_n_text(len(curves), row)})", color, grid, mean, std,
                          dashed=i >= 10))
    return bands


def figure_wall_clock(report: Report, metric: str, generator: str) -> bytes | None:
    """Best-so-far ``metric`` against training wall-clock seconds, mean ± std band per group (None: no data)."""
    bands = wall_clock_bands(report, metric, generator)
    if not bands:
        return None
    fig, ax = _figure()
    for band in bands:
        _band(ax, band, step=len(band.x) > 1)
    ax.set_xlabel("training wall-clock time (s, evaluation excluded)")
    records = records_of(report)
    ax.set_ylabel(f"best-so-far {metric_label(metric, records=records)}")
    ax.set_title(f"Best-so-far {name(metric, records)} against training time\n"
                 f"mean ± std over the runs of each group ({_generator_text(generator)})", fontsize=11)
    _y_axis(ax, metric, np.concatenate([b.mean + np.nan_to_num(b.std) for b in bands]), records)
    _legend(fig, ax, len(bands), legend_title(report))
    return png_bytes(fig)


# -- (b) metric against iteration ---------------------------------------------------------------------------------
def iteration_bands(report: Report, metric: str, generator: str) -> list[Band]:
    bands = []
    for i, (row, color) in enumerate(zip(report.rows, _colors(len(report.rows)))):
        series = [s for s in (eval_series(r.metrics, metric, generator) for r in row.runs) if s]
        if not series:
            continue
        its = sorted({it for s in series for it, _, _ in s})
        index = {it: i for i, it in enumerate(its)}
        values = np.full((len(series), len(its)), np.nan)
        for r, s in enumerate(series):
            for it, _, v in s:
                values[r, index[it]] = v
        mean, std = _mean_std(values)
        bands.append(Band(f"{group_name(report, row)} ({_n_text(len(series), row)})", color, np.array(its),
                          mean, std, dashed=i >= 10))
    return bands


def figure_iterations(report: Report, metric: str, generator: str) -> bytes | None:
    """``metric`` at each evaluation against iteration, mean ± std band per group (None: no data)."""
    bands = iteration_bands(report, metric, generator)
    if not bands:
        return None
    fig, ax = _figure()
    for band in bands:
        _band(ax, band, step=False)
    ax.set_xlabel("iteration (generator updates)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    records = records_of(report)
    title = name(metric, records)
    ax.set_ylabel(metric_label(metric, records=records))
    ax.set_title(f"{title[:1].upper()}{title[1:]} during training\n"
                 f"mean ± std over the runs of each group ({_generator_text(generator)})", fontsize=11)
    _y_axis(ax, metric, np.concatenate([b.mean + np.nan_to_num(b.std) for b in bands]), records)
    _legend(fig, ax, len(bands), legend_title(report))
    return png_bytes(fig)


# -- (c) bars: each group's best --------------------------------------------------------------------------------------
def _bar_ticks(ax: Axes, report: Report) -> None:
    many = len(report.rows) > 8
    sep = ", " if many else "\n"
    ax.set_xticks(range(len(report.rows)),
                  [sep.join(row.labels) if report.group_keys else "all runs" for row in report.rows],
                  rotation=30 if many else 0, ha="right" if many else "center", fontsize="small")
    if report.group_keys:
        ax.set_xlabel(", ".join(report.group_keys) if many or len(report.group_keys) == 1
                      else " / ".join(report.group_keys) + " (tick labels top to bottom)")


def figure_bars(report: Report, metric: str, generator: str, at: str) -> bytes | None:
    """Each group's per-run best (``at="best"``) or last ``metric`` as a bar: mean, error bar = sample std,
    ``n`` above (None: no data)."""
    records = records_of(report)
    better = direction(metric, records)
    per_row = [[v for v in (eval_value(r.metrics, metric, generator, at, better) for r in row.runs)
                if v is not None] for row in report.rows]
    if not any(per_row):
        return None
    means = np.array([np.mean(v) if v else np.nan for v in per_row])
    stds = np.array([np.std(v, ddof=1) if len(v) > 1 else np.nan for v in per_row])
    x = np.arange(len(per_row))
    fig, ax = _figure()
    ax.grid(False, axis="x")
    ax.bar(x, np.nan_to_num(means), color=_colors(len(per_row)), width=0.6)
    ok = np.isfinite(stds)
    ax.errorbar(x[ok], means[ok], yerr=stds[ok], fmt="none", ecolor="black", capsize=5, linewidth=1.2)
    tops = np.nan_to_num(means) + np.where(ok, stds, 0)
    for xi, top, values, row in zip(x, tops, per_row, report.rows):
        ax.annotate(_n_text(len(values), row), (xi, top), xytext=(0, 4), textcoords="offset points", ha="center",
                    va="bottom", fontsize="small")
    lo = min(0.0, float(np.nanmin(np.nan_to_num(means) - np.where(ok, stds, 0))))
    hi = max(0.0, float(tops.max()))
    span = (hi - lo) or 1.0
    ax.set_ylim(lo - (0.05 * span if lo < 0 else 0), hi + 0.15 * span)
    if UNITS.get(metric) == "count":
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _bar_ticks(ax, report)
    which = "Best" if at == "best" else "Last"
    ax.set_ylabel(f"{which.lower()} {metric_label(metric, records=records)}")
    ax.set_title(f"{which} {name(metric, records)} per group\nbar: mean over runs, error bar: sample std, "
                 f"n: runs ({_generator_text(generator)})", fontsize=11)
    return png_bytes(fig)


# -- (d) one run's aggregation weights --------------------------------------------------------------------------------
def read_weights(run_dir: Path) -> tuple[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """``("weights" | "alpha", {k: (iterations, values)})`` from the run's TensorBoard scalars ``agg/weights/k``
    (AVG, GMAN, HV) or ``agg/alpha/k`` (MGD)."""
    if not run_dir.is_dir():
        raise GanBenchError(f"--weights-run {run_dir} is not a folder")
    if not any(run_dir.glob("events.out.tfevents.*")):
        raise GanBenchError(f"--weights-run {run_dir} holds no TensorBoard event file (events.out.tfevents.*)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    keep_only_scalars = {"scalars": 0, "images": 1, "histograms": 1, "tensors": 1, "audio": 1,
                         "compressedHistograms": 1}
    acc = EventAccumulator(str(run_dir), size_guidance=keep_only_scalars)
    try:
        acc.Reload()
    except Exception as err:
        raise GanBenchError(f"cannot read the TensorBoard events in {run_dir}: {err}") from None
    found = [(m.group(1), int(m.group(2)), tag) for tag in acc.Tags().get("scalars", [])
             if (m := WEIGHT_TAG.match(tag))]
    if not found:
        raise GanBenchError(f"{run_dir}: its TensorBoard events hold no agg/weights/K or agg/alpha/K scalars")
    kind = "weights" if any(f[0] == "weights" for f in found) else "alpha"
    series = {}
    for _, k, tag in sorted(f for f in found if f[0] == kind):
        events = acc.Scalars(tag)
        series[k] = (np.array([e.step for e in events]), np.array([e.value for e in events]))
    return kind, series


def figure_weights(run_dir: Path, aggregation: str | None = None, weights: tuple | None = None) -> bytes:
    """The run's per-discriminator aggregation weights against iteration, with the uniform 1/K for reference
    (``weights``: what :func:`read_weights` returned for the run, if it was read already)."""
    kind, series = weights if weights is not None else read_weights(run_dir)
    k_total = len(series)
    fig, ax = _figure()
    if k_total <= 10:
        colors = _colors(k_total)
    else:
        from matplotlib import colormaps

        colors = [colormaps["viridis"](k / max(k_total - 1, 1)) for k in range(k_total)]
    for (k, (steps, values)), color in zip(series.items(), colors):
        ax.plot(steps, values, color=color, linewidth=1.3, label=f"D{k}" if k_total <= 10 else None)
    ax.axhline(1 / k_total, color="grey", linestyle="--", linewidth=1, label=f"uniform 1/K = {1 / k_total:.3g}")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("iteration (generator updates)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("aggregation weight of discriminator k" if kind == "weights" else "MGD coefficient α_k")
    what = "aggregation weights" if kind == "weights" else "MGD coefficients α"
    agg = f"{aggregation}, " if aggregation else ""
    ax.set_title(f"Per-discriminator {what} ({agg}K = {k_total})\nrun {Path(*run_dir.parts[-3:])}", fontsize=11)
    if k_total > 10:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        fig.colorbar(ScalarMappable(Normalize(0, k_total - 1), "viridis"), ax=ax, label="discriminator k")
    _legend(fig, ax, k_total + 1 if k_total <= 10 else 1, title="discriminator" if k_total <= 10 else None)
    return png_bytes(fig)


def discriminator_count(run: RunRecord) -> int | None:
    """K of a run: its cost record's ``discriminators``, else its config's ``discriminators.count``."""
    k = number(run.metrics.get("cost", {}).get("discriminators"))
    if k is None:
        section = run.metrics.get("config", {}).get("discriminators")
        k = number(section.get("count")) if isinstance(section, dict) else None
    return None if k is None else int(k)
