"""The metrics package's user-facing error: a ValueError with one readable sentence."""
from __future__ import annotations

from gan_bench.errors import GanBenchError


class MetricsError(GanBenchError, ValueError):
    """Bad metric input (shapes, files, weights): the CLI prints the message on one line."""
