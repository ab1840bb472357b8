"""How a ``_target_`` node of the config becomes an object: its class located, its keys checked, then built.

The ground floor of every builder (models, optimizers, aggregations, losses, the run): it knows the registries'
rules (:mod:`gan_bench.registry`) and the errors (:mod:`gan_bench.errors`), and nothing else of gan-bench. The
registry of a node's options is handed in by its caller (the layer that owns it); :mod:`gan_bench.config`, on top,
holds the schemas and checks a whole config with the same functions.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.registry import HYDRA_KEYS, Registry, locate, signature_schema


def plain(node: Any) -> Any:
    """A config node as plain Python (dicts, lists, strings for the option Enums), interpolations resolved."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    return node


def first_line(err: BaseException) -> str:
    """An error's message on one line (its type's name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@functools.lru_cache(maxsize=None)
def structured(schema: type) -> DictConfig:
    """``OmegaConf.structured(schema)``, built once per schema class (merge copies it, so it is never changed)."""
    return OmegaConf.structured(schema)


def option_name(where: str, target: str, registry: Registry | None) -> str:
    """How messages name the option a node picks: ``group=name`` when ``registry`` knows its class."""
    name = registry.name_of(target) if registry is not None else None
    group = registry.group if registry is not None else where
    return f"{group}={name}" if name else f"{where}._target_={target}"


def target_class(spec: dict, where: str) -> Any:
    """The class the node at config path ``where`` names with ``_target_``; a ConfigError when it cannot be found."""
    target = spec.get("_target_") if isinstance(spec, dict) else None
    if not target:
        raise ConfigError(f"{where} must name its class with {where}._target_=module.Class")
    try:
        return locate(target)
    except Exception as err:
        raise ConfigError(f"{where}._target_={target} cannot be imported ({first_line(err)}); is its package on "
                          "PYTHONPATH?") from None


def check_keys(spec: dict, cls: Any, where: str, registry: Registry | None) -> None:
    """Every key of ``spec`` must be a keyword of ``cls``'s constructor (its schema); a missing required one too."""
    runtime = registry.runtime if registry is not None else ()
    schema = registry.schema(cls) if registry is not None else signature_schema(cls, runtime)
    if schema is None:  # the constructor takes **kwargs: any key
        return
    allowed = {f.name for f in dataclasses.fields(schema)} - {"_target_"}
    option = option_name(where, spec["_target_"], registry)
    for key in spec:
        if key not in allowed and key not in HYDRA_KEYS:
            what = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"{where}.{key} does not apply to {option} (its keys: {what})")
    for f in dataclasses.fields(schema):
        if f.default == "???" and f.name not in spec:
            raise ConfigError(f"{where}.{f.name} is required by {option}: add {where}.{f.name}=VALUE")
    try:
        OmegaConf.merge(structured(schema), {k: v for k, v in spec.items() if k not in HYDRA_KEYS[1:]})
    except OmegaConfBaseException as err:
        raise ConfigError(f"{where}: {first_line(err)}") from None


def _with_where(err: BaseException, where: str, spec: dict, registry: Registry) -> ConfigError:
    """A constructor's error as one line naming the config key: ``delta=0.5 is ...`` -> ``aggregation.delta=0.5 ...``;
    an unexpected exception type is named too."""
    msg = first_line(err)
    key = msg.split("=", 1)[0] if "=" in msg else ""
    if key.isidentifier() and key in spec:
        return ConfigError(f"{where}.{msg}")
    if not isinstance(err, (GanBenchError, ValueError, TypeError)):
        msg = f"{type(err).__name__}: {msg}"
    return ConfigError(f"{where} ({option_name(where, spec.get('_target_', '?'), registry)}): {msg}")


def instantiate(node: Any, where: str, *, group: Registry, **runtime: Any) -> Any:
    """Build the ``_target_`` node at config path ``where``, gan-bench passing ``runtime`` arguments (data shape,
    number of discriminators, ...). Keys are checked first against the class's schema in ``group``, the registry of
    the node's options; any error is one ConfigError naming the key."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    spec = plain(node)
    cls = target_class(spec, where)
    check_keys(spec, cls, where, group)
    try:
        return hydra_instantiate(spec, **runtime, _convert_="all")
    except InstantiationException as err:
        raise _with_where(err.__cause__ or err, where, spec, group) from None
    except Exception as err:
        raise _with_where(err, where, spec, group) from None
