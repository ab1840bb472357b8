"""A run's console, train.log and loggers (:class:`RunLogger`), and its sample grids (:func:`save_samples`)."""
from __future__ import annotations

import io
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("gan_bench")


def scalars(stats: dict[str, torch.Tensor]) -> dict[str, float]:
    """Flatten per-discriminator vectors ([K]) into ``name/k`` scalars plus their mean (one device sync)."""
    if not stats:
        return {}
    keys = list(stats)
    flat = torch.cat([stats[k].detach().double().reshape(-1) for k in keys]).cpu().tolist()  # float64: no overflow
    out: dict[str, float] = {}
    i = 0
    for k in keys:
        n = stats[k].numel()
        vals = flat[i: i + n]
        i += n
        if n == 1:
            out[k] = vals[0]
        else:
            if k not in ON_SIMPLEX:
                out[f"{k}/mean"] = sum(vals) / n
            out.update({f"{k}/{j}": v for j, v in enumerate(vals)})
    return out


#: per-discriminator vectors that lie on the simplex: their mean is 1/K by construction, so it is not logged
ON_SIMPLEX = ("agg/weights", "agg/alpha")
#: the console and train.log: one line per logging interval, evaluation, sample grid and the end of the run
CONSOLE = "gan_bench.console"


class RunLogger:
    """What a run shows and records as it trains: the console (a rich bar on a terminal, else lines), the plain-text
    ``RUN/train.log`` (every line the console showed, without the bar's redraws) and the config's loggers
    (:mod:`gan_bench.loggers`: TensorBoard, CSV, W&B, MLflow). On a data-parallel run's other ranks it does nothing.

    The bar is refreshed every iteration (:meth:`tick`; rich redraws it on time, 10 times a second, with the ETA
    from the first seconds); in ``lines`` mode a line is also printed when ``LINE_EVERY_S`` passed without one."""

    LINE_EVERY_S = 30.0

    def __init__(self, run_dir: Path, total: int, start: int, progress: str, log_every: int, enabled: bool = True,
                 loggers: list | None = None):
        self.run_dir, self.total, self.log_every, self.enabled = run_dir, total, log_every, enabled
        self.loggers = list(loggers or []) if enabled else []
        mode = progress if enabled else "off"
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() else "lines"
        self.mode = mode
        self._bar = None
        self._t0, self._it0 = time.perf_counter(), start
        self._last_line = self._t0
        self._file = self._console_file(run_dir / "train.log") if enabled else None
        if mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]:.1f} it/s"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[losses]}"), refresh_per_second=10)
            self._task = self._bar.add_task("train", total=total, completed=start, rate=0.0, losses="")
            self._bar.start()

    @staticmethod
    def _console_file(path: Path) -> logging.Handler:
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%Y-%m-%d %H:%M:%S"))
        return handler

    def say(self, line: str, console: bool = True, err: bool = False) -> None:
        """One line to the console (unless the bar shows it already, or it is progress and progress is off:
        ``console=False``) and to train.log."""
        if not self.enabled:
            return
        if console:
            if self._bar is not None:
                self._bar.console.print(line, markup=False, highlight=False)
            else:
                print(line, file=sys.stderr if err else sys.stdout, flush=True)
        if self._file is not None:
            self._file.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "name": CONSOLE}))

    def config(self, params: dict[str, Any], swept: list[str]) -> None:
        for lg in self.loggers:
            lg.config(params, swept)

    def restart(self, iteration: int) -> None:
        """Continue from ``iteration`` after a rollback: later events already written are dropped from view."""
        for lg in self.loggers:
            lg.restart(iteration)
        self._t0, self._it0 = time.perf_counter(), iteration

    def rate(self, it: int) -> float:
        dt = time.perf_counter() - self._t0
        return (it - self._it0) / dt if dt > 0 else 0.0

    def tick(self, it: int) -> None:
        """Every iteration: the bar's count (cheap: rich redraws on its own clock); in lines mode, a line when none
        was printed for ``LINE_EVERY_S`` (slow iterations)."""
        if self._bar is not None:
            self._bar.update(self._task, completed=it, rate=self.rate(it))
        elif self.mode == "lines" and time.perf_counter() - self._last_line > self.LINE_EVERY_S:
            self._line(it, "", console=True)

    def _line(self, it: int, brief: str, console: bool = True) -> None:
        self._last_line = time.perf_counter()
        left = (self.total - it) / max(self.rate(it), 1e-9)
        eta = f"  eta {_duration(left)}" if it < self.total and self.rate(it) > 0 else ""
        self.say(f"[gan-bench] it {it}/{self.total}  {self.rate(it):.1f} it/s{eta}  {brief}".rstrip(), console)

    def step(self, it: int, values: dict[str, float] | None) -> None:
        """``it`` iterations done; ``values`` (on logging iterations) go to the loggers, the console and train.log."""
        rate = self.rate(it)
        if values is not None:
            self.scalars({**values, "perf/iterations_per_s": rate}, it)
            brief = "  ".join(f"{k}={values[k]:.3f}" for k in ("g/loss", "d/loss/mean", "d/loss") if k in values)
            self._line(it, brief, console=self.mode == "lines")
            if self._bar is not None:
                self._bar.update(self._task, completed=it, rate=rate, losses=brief)
        self.tick(it)

    def scalars(self, values: dict[str, float], it: int) -> None:
        for lg in self.loggers:
            lg.scalars(values, it)

    def image(self, tag: str, png: Path, it: int) -> None:
        for lg in self.loggers:
            lg.image(tag, png, it)

    def text(self, tag: str, text: str, it: int) -> None:
        for lg in self.loggers:
            lg.text(tag, text, it)

    def phase(self, description: str, total: int | None) -> Any:
        """A second bar (or nothing, in lines mode) for a long step inside an iteration, e.g. an evaluation:
        returns ``advance(n)``."""
        if self._bar is None:
            return lambda n=1: None
        task = self._bar.add_task(description, total=total, rate=0.0, losses="")

        def advance(n: int = 1, _task=task) -> None:
            self._bar.update(_task, advance=n)
            if self._bar.tasks[_task].finished:
                self._bar.remove_task(_task)
        return advance

    def finish(self, record: dict, files: list[Path], status: str) -> None:
        for lg in self.loggers:
            lg.finish(record, files, status)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        for lg in self.loggers:
            try:
                lg.close()
            except Exception as err:  # a logger that fails to close must not hide the run's own outcome
                log.warning("closing %s failed: %s", type(lg).__name__, err)
        self.loggers = []
        if self._file is not None:
            self._file.close()
            self._file = None


def flat_config(tree: dict, prefix: str = "") -> dict[str, Any]:
    """A plain config as ``{"train.seed": 1, ...}``: numbers, bools, strings and None as they are (an int stays an
    int), lists as JSON text, for loggers' parameter tables (W&B config, MLflow params)."""
    import json

    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple)) else v
    return out


def _overrides(run_dir: Path) -> list[str]:
    from gan_bench.report.collect import read_overrides_quiet

    return [o for o in read_overrides_quiet(run_dir) or [] if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]


def swept_keys(run_dir: Path) -> list[str]:
    """The keys this run's command line set (its .hydra/overrides.yaml): a sweep job's swept values among them."""
    return [o.lstrip("+~").split("=", 1)[0] for o in _overrides(run_dir)]


def run_label(run_dir: Path) -> str:
    """A readable name of the run for loggers that list runs (W&B, MLflow): the overrides that set it apart, as its
    folder in a sweep names them without the job number (``aggregation=hv,train.seed=1``; :mod:`gan_bench.job_names`),
    a single run's overrides, else its folder's name."""
    import yaml
    from hydra.errors import OverrideParseException

    from gan_bench.job_names import job_label, recorded_shared_keys

    try:
        record = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        record = None
    try:
        label = job_label(_overrides(run_dir), recorded_shared_keys(record.get("hydra") if isinstance(record, dict)
                                                                    else None))
    except OverrideParseException:
        label = ""
    return label or run_dir.name


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def save_samples(samples: torch.Tensor, path: Path, real: torch.Tensor | None = None, it: int = 0) -> Path:
    """An image grid (images in [-1, 1]) or, for 2-D points, a scatter plot of samples over data, as a PNG file."""
    from gan_bench.files import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    if samples.dim() == 2:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        if real is not None:
            r = real[:2000].cpu()
            ax.scatter(r[:, 0], r[:, 1], s=2, c="tab:green", alpha=0.3, label="data")
        s = samples.detach().cpu()
        ax.scatter(s[:, 0], s[:, 1], s=2, c="tab:blue", alpha=0.6, label="G(z)")
        ax.set_aspect("equal")
        ax.set_title(f"iteration {it}")
        ax.legend(loc="upper right", markerscale=4)
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
    else:
        from torchvision.utils import make_grid, save_image

        grid = make_grid(samples.detach().float().cpu(), nrow=int(len(samples) ** 0.5), normalize=True,
                         value_range=(-1, 1))
        save_image(grid, buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())
