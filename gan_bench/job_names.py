"""A sweep's job folders and run names, from the overrides that differ between its jobs.

``gan-bench train -m aggregation=avg,hv train.seed=1,2 train.iterations=300`` writes its four jobs into
``SWEEP/0_aggregation=avg,train.seed=1``, ``SWEEP/1_aggregation=avg,train.seed=2``, ``SWEEP/2_aggregation=hv,...``:
Hydra's job number (launch order, and unique even where two jobs share their values) and the job's own overrides less
the keys every job shares (``train.iterations`` here). TensorBoard names its runs after these folders; W&B and
MLflow get the same label.

The keys every job shares are Hydra's own ``hydra.job.config.override_dirname.exclude_keys``, which ``gan-bench train
-m`` fills in from its command line (:func:`shared_keys`), so Hydra's ``${hydra.job.override_dirname}`` names the
same overrides. ``hydra.sweep.subdir`` is ``${gan_bench.job_dir:}`` (conf/config.yaml), resolved by Hydra where the
job runs; ``hydra.sweep.subdir='${hydra.job.num}'`` brings back plain numbers. An Optuna sweep's sampled keys are not
on the command line, so they name its trials' folders too.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from omegaconf import OmegaConf

RESOLVER = "gan_bench.job_dir"
SUBDIR = "${" + RESOLVER + ":}"  # the default hydra.sweep.subdir (conf/config.yaml)
EXCLUDE_KEY = "hydra.job.config.override_dirname.exclude_keys"
#: the longest label a folder gets (file names end at 255 bytes); a longer one is cut, the job number keeps it unique
MAX_LABEL = 150
_UNSAFE = re.compile(r"[^A-Za-z0-9_.,=+\-@%~\[\]]+")


def _parse(overrides: Sequence[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(list(overrides))


def _is_hydra(key: str) -> bool:
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def shared_keys(args: Sequence[str]) -> list[str]:
    """The keys a sweep's command line sets to one value for every job (no ``a,b`` or ``range()`` sweep), as Hydra's
    ``override_dirname.exclude_keys`` names them (no ``+``; a group as ``model/generator``); Hydra's own left out."""
    keys = [o.key_or_group for o in _parse([a for a in args if not a.startswith("-")]) if not o.is_sweep_override()]
    return [k for k in dict.fromkeys(keys) if not _is_hydra(k)]


def job_label(overrides: Sequence[str], exclude: Iterable[str] = ()) -> str:
    """``key=value`` of each override (``hydra.*`` and the ``exclude`` keys left out), joined by ``,`` in command-line
    order: a group's ``/`` reads as ``.``, characters a folder name should not hold as one ``_``; cut at
    :data:`MAX_LABEL` characters."""
    left_out = set(exclude)
    parts = []
    for override in _parse(overrides):
        key = override.key_or_group
        if key in left_out or _is_hydra(key):
            continue
        name = key.replace("/", ".")
        text = f"~{name}" if override.is_delete() else f"{name}={override.get_value_element_as_str()}"
        parts.append(_UNSAFE.sub("_", text))
    label = ",".join(parts)
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 3] + "..."


def job_dir(num: int, overrides: Sequence[str], exclude: Iterable[str] = ()) -> str:
    """A sweep job's folder name: ``NUM_LABEL`` (:func:`job_label`), ``NUM`` where the job has no overrides of its
    own."""
    label = job_label(overrides, exclude)
    return f"{num}_{label}" if label else str(num)


def recorded_shared_keys(hydra: Any) -> list[str]:
    """The shared keys a stored ``hydra`` node records (a plain dict: multirun.yaml's, a job's .hydra/hydra.yaml's)."""
    node = hydra
    for part in EXCLUDE_KEY.split(".")[1:]:
        node = node.get(part) if isinstance(node, dict) else None
    return [str(k) for k in node] if isinstance(node, list) else []


def _resolve(*, _root_) -> str:
    job = _root_.hydra.job
    if OmegaConf.is_missing(job, "num"):  # not a sweep's job (``--cfg hydra --resolve``): shown as Hydra shows its own
        return "???"
    return job_dir(int(job.num), list(_root_.hydra.overrides.task), list(job.config.override_dirname.exclude_keys))


def register_resolver() -> None:
    """``${gan_bench.job_dir:}``: the job folder of the config it is resolved in (Hydra resolves
    ``hydra.sweep.subdir`` in the job's own process: this module is imported there with the task function)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _resolve)


register_resolver()
