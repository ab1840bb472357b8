"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class GanBenchError(Exception):
    """Base class for errors caused by the user's input (config, data, checkpoints)."""


class ConfigError(GanBenchError):
    """An impossible or inconsistent configuration value."""


class DataError(GanBenchError):
    """Missing or unreadable data."""


class CheckpointError(GanBenchError):
    """A checkpoint that is missing, truncated, corrupt or incompatible with the config."""
