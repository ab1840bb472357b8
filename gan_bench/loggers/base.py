"""The interface every logger implements, and building the config's ``logger`` section."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Mapping

from gan_bench.errors import ConfigError
from gan_bench.registry import Registry

#: the ``logger`` group: gan-bench passes the run's folder, its name and the iteration it starts from (> 0: resumed)
LOGGERS = Registry("logger", runtime=("run_dir", "run_name", "start"))


class Logger:
    """One destination of a run's record. The training loop calls these on the main process only, in this order:
    ``config`` once, then ``scalars`` / ``image`` / ``text`` as training goes, ``finish`` once at the end (the final
    metrics and the files worth keeping: metrics.json, the last sample grid), ``close`` always."""

    def config(self, params: Mapping[str, Any], swept: list[str]) -> None:
        """The run's flattened config (``train.seed: 1``) and which of its keys the sweep varies."""

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Numbers at an iteration: losses, gradient norms, metrics (``eval_raw/fid``), cost."""

    def image(self, tag: str, png: Path, step: int) -> None:
        """A sample grid (or 2-D scatter) written as a PNG file."""

    def text(self, tag: str, text: str, step: int) -> None:
        """A note at an iteration (e.g. the model summary)."""

    def restart(self, step: int) -> None:
        """Training goes on from ``step`` again (a rollback): what was logged after it is no longer the run's."""

    def finish(self, record: Mapping[str, Any], files: list[Path], status: str) -> None:
        """The run's record (metrics.json's content: config, evaluations, best values, cost), the files to keep with
        it (metrics.json, the last sample grid) and its final status (finished, diverged, failed, interrupted)."""

    def close(self) -> None:
        """Flush and release; also called after a failure."""


def best_values(record: Mapping[str, Any]) -> dict[str, float]:
    """``best/KEY`` -> the best value of each evaluated key (metrics.json's ``best``), plus the run's cost."""
    out = {f"best/{k}": float(v["value"]) for k, v in (record.get("best") or {}).items()
           if isinstance(v, Mapping) and isinstance(v.get("value"), (int, float))}
    for k in ("iterations", "wall_clock_s", "iterations_per_s"):
        if isinstance(record.get(k), (int, float)):
            out[k] = float(record[k])
    return out


def needs(module: str, extra: str) -> None:
    """One line naming the install command when an optional logger's package is missing."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"logger={extra} needs the {module} package: pip install 'gan-bench[{extra}]'")


def build_loggers(section: Mapping[str, Any] | None, run_dir: Path, run_name: str, start: int) -> list[Logger]:
    """The loggers of the config's ``logger`` section (name -> node with a ``_target_``), in its order; a node set
    to null is switched off (``logger.tensorboard=null``)."""
    from gan_bench.build import instantiate

    out = []
    for name, node in (section or {}).items():
        if node is None:
            continue
        if not isinstance(node, Mapping) or "_target_" not in node:
            raise ConfigError(f"logger.{name} must name its class with _target_ (e.g. logger={name} selects "
                              "conf/logger/NAME.yaml)")
        out.append(instantiate(node, f"logger.{name}", group=LOGGERS, run_dir=run_dir, run_name=run_name,
                               start=start))
    return out
