"""A plain CSV of every logged number: ``RUN/metrics.csv`` with the columns step, key, value (one row per number,
so the keys may change along a run); pandas reads it with ``pd.read_csv(...).pivot(index="step", columns="key")``."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping

from gan_bench.loggers.base import LOGGERS, Logger, best_values


@LOGGERS.register("csv")
class CSV(Logger):
    """RUN/metrics.csv: step, key, value — every logged number, one per row."""

    def __init__(self, run_dir: Path, run_name: str, start: int = 0, file: str = "metrics.csv"):
        self.path = Path(run_dir) / file
        if self.path.exists():
            self._keep_until(start)  # a resumed run: rows past its checkpoint were not the run's
        new = not self.path.exists()
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(["step", "key", "value"])

    def _keep_until(self, step: int) -> None:
        from gan_bench.files import atomic_write_bytes

        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        out = io.StringIO()
        csv.writer(out).writerows([rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step])
        atomic_write_bytes(self.path, out.getvalue().encode())

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        self._csv.writerows([step, k, repr(float(v))] for k, v in values.items())

    def restart(self, step: int) -> None:
        self._file.close()
        self._keep_until(step)
        self._file = self.path.open("a", newline="")
        self._csv = csv.writer(self._file)

    def finish(self, record: Mapping[str, Any], files: list[Path], status: str) -> None:
        step = int(record.get("iterations") or 0)
        self.scalars(best_values(record), step)

    def close(self) -> None:
        self._file.close()
