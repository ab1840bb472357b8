"""TensorBoard, sample grids and console progress for a run."""
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
            out[f"{k}/mean"] = sum(vals) / n
            out.update({f"{k}/{j}": v for j, v in enumerate(vals)})
    return out


class _NoWriter:
    """Stands in for TensorBoard's writer where nothing is to be written (a data-parallel run's other ranks)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class RunLogger:
    def __init__(self, run_dir: Path, total: int, start: int, progress: str, log_every: int, enabled: bool = True):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        # purge_step drops events written after the checkpoint we resume from (e.g. before a kill)
        purge = start if start > 0 else None
        self.tb = SummaryWriter(log_dir=str(run_dir), purge_step=purge) if enabled else _NoWriter()
        self.total, self.log_every = total, log_every
        mode = progress if enabled else "off"
        if mode == "auto":
            mode = "bar" if sys.stdout.isatty() else "lines"
        self.mode = mode
        self._bar = None
        self._t0, self._it0 = time.perf_counter(), start
        if mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]:.1f} it/s"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[losses]}"))
            self._task = self._bar.add_task("train", total=total, completed=start, rate=0.0, losses="")
            self._bar.start()

    def restart(self, iteration: int) -> None:
        """Continue from ``iteration`` after a rollback: later events already written are dropped from view."""
        from torch.utils.tensorboard import SummaryWriter

        if isinstance(self.tb, _NoWriter):
            return
        self.tb.close()
        self.tb = SummaryWriter(log_dir=str(self.run_dir), purge_step=iteration)
        self._t0, self._it0 = time.perf_counter(), iteration

    def rate(self, it: int) -> float:
        dt = time.perf_counter() - self._t0
        return (it - self._it0) / dt if dt > 0 else 0.0

    def step(self, it: int, values: dict[str, float] | None) -> None:
        """``it`` iterations done; ``values`` (on logging iterations) go to TensorBoard and the console."""
        rate = self.rate(it)
        if values is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, it)
            self.tb.add_scalar("perf/iterations_per_s", rate, it)
            brief = "  ".join(f"{k}={values[k]:.3f}" for k in ("g/loss", "d/loss/mean", "d/loss") if k in values)
            if self.mode == "lines":
                print(f"[gan-bench] it {it}/{self.total}  {rate:.1f} it/s  {brief}", flush=True)
            if self._bar is not None:
                self._bar.update(self._task, completed=it, rate=rate, losses=brief)
        elif self._bar is not None:
            self._bar.update(self._task, completed=it, rate=rate)

    def text(self, tag: str, text: str, it: int) -> None:
        self.tb.add_text(tag, text, it)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self.tb.flush()
        self.tb.close()


def save_samples(samples: torch.Tensor, path: Path, tb: Any, it: int, real: torch.Tensor | None = None) -> None:
    """An image grid (images in [-1, 1]) or, for 2-D points, a scatter plot of samples over data."""
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
        tb.add_figure("samples", fig, it)
        plt.close(fig)
    else:
        from torchvision.utils import make_grid, save_image

        grid = make_grid(samples.detach().float().cpu(), nrow=int(len(samples) ** 0.5), normalize=True,
                         value_range=(-1, 1))
        save_image(grid, buf, format="png")
        tb.add_image("samples", grid, it)
    atomic_write_bytes(path, buf.getvalue())
