"""Generator-loss aggregations for a generator facing K discriminators (config group ``aggregation``).

Albuquerque, Monteiro, Doan, Considine, Falk, Mitliagkas, "Multi-objective training of Generative Adversarial
Networks with multiple discriminators", ICML 2019. The generator sees K per-discriminator losses
``l = (l_1, ..., l_K)`` and turns them into one update: ``avg`` (average.py), ``gman`` / ``gman_auto`` (gman.py),
``hv`` (hypervolume.py) combine the losses; ``mgd`` (mgd.py) combines the K gradients.
"""
from __future__ import annotations

from gan_bench.aggregation.average import Average
from gan_bench.aggregation.base import AGGREGATIONS, REDUCTIONS, Aggregation, GeneratorRoute
from gan_bench.aggregation.gman import GMAN, GMAN_AUTO_PENALTY, GMANAuto, softmax_mean
from gan_bench.aggregation.hypervolume import Hypervolume
from gan_bench.aggregation.mgd import (
    MAX_EXACT_K,
    SOLVERS,
    MultipleGradientDescent,
    batched_vjp_rows,
    gram64,
    min_norm_point,
    per_loss_grads,
    resolve_solver,
)
from gan_bench.errors import ConfigError


def build_aggregation(name: str, **params) -> Aggregation:
    """The registered aggregation ``name`` built with ``params`` (for use from Python; runs build it from config)."""
    if name not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {name!r}; valid options: {', '.join(AGGREGATIONS.names())}")
    return AGGREGATIONS.entry(name).cls(**params)


__all__ = ["AGGREGATIONS", "Aggregation", "Average", "GMAN", "GMANAuto", "GMAN_AUTO_PENALTY", "GeneratorRoute",
           "Hypervolume", "MAX_EXACT_K", "MultipleGradientDescent", "REDUCTIONS", "SOLVERS", "batched_vjp_rows",
           "build_aggregation", "gram64", "min_norm_point", "per_loss_grads", "resolve_solver", "softmax_mean"]
