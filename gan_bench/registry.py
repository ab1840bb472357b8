"""Named, pluggable components: each option of a config group is registered ONCE, with its class.

A group (``aggregation``, ``loss``, ``model/generator`` ...) is a :class:`Registry`. Its options are classes whose
constructor IS the option's schema: the keyword parameters (with their annotations and defaults) are the keys the
option accepts, and the constructor checks their values. Parameters that gan-bench itself supplies at build time
(``runtime``, e.g. the data shape or the number of discriminators) are not config keys. A config node names its
class with Hydra's ``_target_``; a class that is not registered (a user's own, on ``PYTHONPATH``) gets its schema
from its signature in the same way, so every node is checked by the same rules.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import types
import typing
from typing import Any, Callable, Iterable, List, Optional

HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


class Choice(str, enum.Enum):
    """Base of the config's closed option sets: members are their strings (``==``, ``str()``, formatting)."""

    def __str__(self) -> str:
        return str(self.value)


def choice(name: str, values: Iterable[str]) -> type[Choice]:
    """A ``str`` Enum of the given values (member name = value), for config fields with a closed set of options.
    OmegaConf rejects any other value and lists the valid ones; members compare equal to their strings."""
    return Choice(name, [(v, v) for v in values])  # type: ignore[return-value]


def target_path(cls: Callable) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def locate(path: str) -> Callable:
    """The class or function a ``_target_`` names: the longest importable module prefix, then attributes.
    Raises ImportError naming the missing module or attribute."""
    import importlib

    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                continue  # that prefix is not a module: try a shorter one
            raise
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                raise ImportError(f"{'.'.join(parts[:parts.index(attr)])} has no attribute {attr!r}")
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module named {parts[0]!r}")


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    cls: Callable
    doc: str
    params: tuple[str, ...] | None  # None: every keyword parameter of the constructor (but the runtime ones)


class Registry:
    """The options of one config group, by short name."""

    def __init__(self, group: str, runtime: tuple[str, ...] = ()):
        self.group = group
        self.runtime = runtime  # constructor parameters gan-bench passes at build time (never config keys)
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, params: tuple[str, ...] | None = None) -> Callable:
        """Class decorator: ``@AGGREGATIONS.register("hv")``."""
        def deco(cls: Callable) -> Callable:
            self.add(name, cls, params)
            return cls
        return deco

    def add(self, name: str, cls: Callable, params: tuple[str, ...] | None = None) -> None:
        if name in self._entries and self._entries[name].cls is not cls:
            raise ValueError(f"{self.group} option {name!r} is already registered to "
                             f"{target_path(self._entries[name].cls)}")
        doc = (inspect.getdoc(cls) or "").split("\n")[0]
        self._entries[name] = Entry(name, cls, doc, params)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Entry:
        return self._entries[name]

    def name_of(self, target: Any) -> str | None:
        """The short name of a class or ``_target_`` path, or None for a class that is not registered."""
        path = target if isinstance(target, str) else target_path(target)
        return next((e.name for e in self._entries.values() if target_path(e.cls) == path), None)

    def schema(self, cls: Callable) -> type | None:
        """The dataclass schema of a class (registered or not); None if its constructor takes ``**kwargs``."""
        entry = next((e for e in self._entries.values() if e.cls is cls), None)
        return signature_schema(cls, self.runtime, entry.params if entry else None)


def _config_type(annotation: Any) -> Any:
    """An annotation as a type OmegaConf can check (int, float, bool, str, Enum, Optional / List of them), else Any."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float, bool, str) or (inspect.isclass(annotation) and issubclass(annotation, enum.Enum)):
        return annotation
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            inner = _config_type(rest[0])
            return Optional[inner] if type(None) in args else inner
        if set(rest) == {int, float}:
            return Optional[float] if type(None) in args else float
        return Any
    if origin in (list, tuple, List) and args:
        items = {a for a in args if a is not Ellipsis}
        if len(items) == 1:
            item = _config_type(items.pop())
            return List[item] if item is not Any else List[Any]
        if items <= {int, float}:
            return List[float]
    return Any


def _hints(cls: Callable) -> dict[str, Any]:
    fn = cls.__init__ if inspect.isclass(cls) else cls
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable annotations (e.g. torch's private types): check names only
        return {}


@functools.lru_cache(maxsize=None)
def signature_schema(cls: Callable, runtime: tuple[str, ...] = (),
                     params: tuple[str, ...] | None = None) -> type | None:
    """A dataclass with a ``_target_`` field plus one field per keyword parameter of ``cls``'s constructor (typed from
    its annotations, defaulting to its defaults, required where it has none); ``runtime`` parameters and positional-only
    ones are left out. None when the constructor accepts ``**kwargs`` (any key is then allowed)."""
    sig = inspect.signature(cls)
    if params is None and any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    hints = _hints(cls)
    fields: list[tuple] = [("_target_", str, dataclasses.field(default=target_path(cls)))]
    for name, p in sig.parameters.items():
        if name in runtime or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        if params is not None and name not in params:
            continue
        kind = _config_type(hints.get(name, Any))
        if p.default is p.empty:
            default = dataclasses.field(default="???")  # OmegaConf's MISSING: the node must give it
        elif isinstance(p.default, (list, tuple, dict)):
            value = list(p.default) if not isinstance(p.default, dict) else dict(p.default)
            default = dataclasses.field(default_factory=lambda v=value: v)
        else:
            default = dataclasses.field(default=p.default)
        fields.append((name, kind, default))
    module = getattr(cls, "__module__", "").rsplit(".", 1)[-1].title().replace("_", "")
    return dataclasses.make_dataclass(f"{module}{getattr(cls, '__name__', 'Component')}Config", fields)
