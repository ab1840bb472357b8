"""Where a run's record goes besides its folder: the ``logger`` config group, as in lightning-hydra-template.

``logger=tensorboard`` (the default), ``logger=csv``, ``logger=wandb``, ``logger=mlflow``, or several at once:
``logger=[tensorboard,mlflow]``. Each option is one file here, a registered :class:`~.base.Logger`; a logger of
your own is a class with the same methods, named by ``_target_`` (README: Plug in your own). W&B and MLflow are
optional extras (``pip install 'gan-bench[wandb]'``, ``'gan-bench[mlflow]'``); asking for one that is not
installed is one line naming the install command.
"""
from __future__ import annotations

from gan_bench.loggers.base import LOGGERS, Logger, build_loggers
from gan_bench.loggers.csv_file import CSV
from gan_bench.loggers.mlflow import MLflow
from gan_bench.loggers.tensorboard import TensorBoard
from gan_bench.loggers.wandb import WandB

__all__ = ["CSV", "LOGGERS", "Logger", "MLflow", "TensorBoard", "WandB", "build_loggers"]
