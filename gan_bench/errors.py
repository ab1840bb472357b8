"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class GanBenchError(Exception):
    """Base class for errors caused by the user's input (config, data, checkpoints)."""


class ConfigError(GanBenchError, ValueError):
    """An impossible or inconsistent configuration value (also a ``ValueError`` for callers from Python)."""


class DataError(GanBenchError):
    """Missing or unreadable data."""


class CheckpointError(GanBenchError):
    """A checkpoint that is missing, truncated, corrupt or incompatible with the config."""


class UnsafeFileError(GanBenchError):
    """A file that asks to build objects other than tensors and plain data (it could run code): never loaded."""
