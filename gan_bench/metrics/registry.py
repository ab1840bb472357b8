"""The metric registry: a metric is one class, declared with ``@register_metric``, that the Evaluator runs generically.

A metric declares what it needs and the Evaluator provides it (after stylegan2-ada's ``@register_metric`` and
torch-fidelity's feature extractors):

* ``name`` (what ``eval.metrics`` lists) and ``keys`` (the result keys it fills, None when it is unavailable);
* ``data``: the kind of dataset it applies to, :data:`IMAGES` or :data:`POINTS` (the 2-D mixtures);
* ``extractor`` (a :class:`FeatureExtractor` class, built-in or the metric's own) and which of its ``outputs`` it
  reads; the Evaluator loads each extractor class once and sends each batch through it once;
* ``real``: the real-data reference on that output, :data:`MOMENTS` (streamed mean and covariance of all real
  rows), :data:`ROWS` (a fixed random subset of ``min(n_real, n_samples)`` rows) or None; cached on disk;
* ``fake``: what the Evaluator keeps of the generated side, :data:`MOMENTS`, :data:`ROWS` (all rows) or None; a
  metric may also accumulate per-sample outputs itself in :meth:`Metric.update` (as IS accumulates logits);
* ``directions``: for *every* key in ``keys``, which way is better, :data:`LOWER` (FID), :data:`HIGHER` (IS) or None
  (a diagnostic such as a std: never optimised). A key left out is an error at registration, never silently
  minimised. The best-so-far tracking of training, ``train.objective`` and ``gan-bench report`` read them from here
  (:func:`direction`, :func:`sign`, :func:`objective_sign`); each run also records them in its metrics.json
  (``metric_keys``, from :func:`metric_keys`) so that the report reads a plug-in's directions without importing it;
* ``labels``: an optional short label per key for tables and figures (``{"fid": "FID"}``; default: the key).

Once per Evaluator it records :meth:`Metric.protocol` and prints :meth:`Metric.warning`; per evaluation it calls
:meth:`Metric.start`, :meth:`Metric.update` for every batch and :meth:`Metric.compute` once. Example, a metric
registered from any module (a file outside the package works the same, once imported)::

    @register_metric
    class MeanGap(Metric):
        name, keys = "mean_gap", ("mean_gap",)
        directions, labels = {"mean_gap": LOWER}, {"mean_gap": "mean gap"}
        extractor, output = InceptionExtractor, "pool3"
        real, fake = MOMENTS, MOMENTS

        def compute(self, real, fake):
            return {"mean_gap": float((fake.moments.mean.cpu() - torch.from_numpy(real.stats[0])).norm())}
"""
from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import torch

from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.settings import EvalSettings
from gan_bench.metrics.stats import StreamingMoments

IMAGES, POINTS = "images", "points"  # the data kinds a metric applies to
MOMENTS, ROWS = "moments", "rows"  # what a metric needs of the real or generated features
LOWER, HIGHER = "lower", "higher"  # which way a result key is better (None: neither, e.g. a std)
DIRECTIONS = (LOWER, HIGHER, None)

Result = dict[str, "float | int | None"]


class FakeFeatures:
    """The generated side of one extractor output, as the metrics on it asked: streamed moments and/or all rows."""

    def __init__(self, device: torch.device, *, moments: bool, rows: bool) -> None:
        self.moments = StreamingMoments(device) if moments else None
        self._rows: list[torch.Tensor] | None = [] if rows else None

    def update(self, features: torch.Tensor) -> None:
        if self.moments is not None:
            self.moments.update(features)
        if self._rows is not None:
            self._rows.append(features.float())

    @cached_property
    def rows(self) -> torch.Tensor | None:
        """All generated rows ``[n_samples, d]`` (float32, on the device), or None when no metric asked for them."""
        return torch.cat(self._rows) if self._rows is not None else None


class Metric:
    """Base class of every metric; subclasses set the class attributes (see the module docstring) and :meth:`compute`.

    One instance lives as long as its Evaluator: ``__init__`` checks the settings the metric needs (raise
    :class:`MetricsError`), and the instance may keep state across evaluations (e.g. the real side of a distance).
    """

    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]
    data: ClassVar[str] = IMAGES
    extractor: ClassVar[type[FeatureExtractor]]
    output: str  # a class attribute; an instance may choose another output of the extractor from the settings
    real: ClassVar[str | None] = None
    fake: ClassVar[str | None] = None
    min_samples: ClassVar[int] = 2  # the fewest generated samples the metric is defined for
    directions: ClassVar[Mapping[str, str | None]] = {}  # key -> LOWER, HIGHER or None; every key of ``keys``
    labels: ClassVar[Mapping[str, str]] = {}  # key -> short label for tables and figures (default: the key)

    def __init__(self, settings: EvalSettings) -> None:
        self.settings = settings

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        """How the values are computed (sample counts, features, reference files), recorded next to them."""
        return {}

    def warning(self, real: RealReference | None) -> str | None:
        """A caveat about the values of this configuration (e.g. too few samples), printed once; None when none."""
        return None

    def start(self) -> None:
        """Reset what :meth:`update` accumulates, before the samples of one evaluation."""

    def update(self, features: torch.Tensor) -> None:
        """The metric's output of the next batch of generated samples, in order (for metrics that stream)."""

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> Result:
        """``{key: value}`` for every key in ``keys``, from the real reference and the generated side."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Metric]] = {}
METRICS: dict[str, tuple[str, ...]] = {}  # metric name -> the result keys it produces, in registration order


def _declaration_problem(cls: type) -> str | None:
    """What is wrong with a metric class's declaration, or None."""
    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        return "is not a subclass of Metric"
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        return "has no name"
    if not getattr(cls, "keys", None) or not all(isinstance(k, str) for k in cls.keys):
        return "declares no result keys"
    extractor = getattr(cls, "extractor", None)
    if not (isinstance(extractor, type) and issubclass(extractor, FeatureExtractor)):
        return "names no FeatureExtractor class"
    if getattr(cls, "output", None) not in extractor.outputs:
        return f"reads output {getattr(cls, 'output', None)!r}, not one of {extractor.__name__}.outputs"
    if cls.data not in (IMAGES, POINTS):
        return f"has data={cls.data!r}; valid: {IMAGES!r}, {POINTS!r}"
    if cls.real not in (MOMENTS, ROWS, None) or cls.fake not in (MOMENTS, ROWS, None):
        return f"has real={cls.real!r}, fake={cls.fake!r}; valid: {MOMENTS!r}, {ROWS!r}, None"
    directions, labels = getattr(cls, "directions", None), getattr(cls, "labels", None)
    if not isinstance(directions, Mapping) or not isinstance(labels, Mapping):
        return "has directions or labels that are not mappings of result key -> value"
    undeclared = [k for k in cls.keys if k not in directions]
    if undeclared:
        return (f"declares no direction for {', '.join(map(repr, undeclared))}: add directions = "
                f"{{{', '.join(f'{k!r}: {LOWER!r}' for k in undeclared)}}} ({LOWER!r} or {HIGHER!r} is better, or "
                "None for a value that is never optimised)")
    bad = {k: v for k, v in directions.items() if k in cls.keys and v not in DIRECTIONS}
    if bad:
        return f"has directions {bad!r}; valid: {LOWER!r}, {HIGHER!r}, None"
    stray = [k for k in [*directions, *labels] if k not in cls.keys]
    if stray:
        return f"declares directions or labels for {', '.join(map(repr, stray))}, not among its keys {cls.keys!r}"
    if not all(isinstance(v, str) and v for v in labels.values()):
        return "has a label that is not a non-empty string"
    for key in cls.keys:
        other = _declaring(key)
        if other is not None and other.name != cls.name and other.directions[key] != directions[key]:
            return (f"declares {key!r} {directions[key] or 'not optimised'}, but metric {other.name!r} already "
                    f"declares it {other.directions[key] or 'not optimised'}")
    return None


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: make ``cls`` available to the Evaluator (and to ``eval.metrics``) under ``cls.name``."""
    problem = _declaration_problem(cls)
    if problem:
        raise MetricsError(f"cannot register metric class {getattr(cls, '__qualname__', cls)!r}: it {problem}")
    if cls.name in _REGISTRY:
        raise MetricsError(f"a metric named {cls.name!r} is already registered ({_REGISTRY[cls.name].__qualname__})")
    _REGISTRY[cls.name] = cls
    METRICS[cls.name] = tuple(cls.keys)
    return cls


#: the built-in metrics, in the order registered_metrics() lists them (whatever order their modules are imported in)
BUILT_IN = ("fid", "is", "kid", "pr", "fid_classifier", "modes", "modes_stacked")


def registered_metrics(data: str | None = None) -> list[str]:
    """The names of the registered metrics (those for ``data``, :data:`IMAGES` or :data:`POINTS`, when given): the
    built-ins first, in :data:`BUILT_IN` order, then the others in registration order."""
    names = sorted(_REGISTRY, key=lambda n: (BUILT_IN.index(n) if n in BUILT_IN else len(BUILT_IN), 0))
    return [name for name in names if data is None or _REGISTRY[name].data == data]


def metric_classes(names: Sequence[str]) -> list[type[Metric]]:
    """The classes of ``names``; one MetricsError naming every unknown name and listing the registered ones."""
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise MetricsError(f"unknown metric(s) {', '.join(map(repr, unknown))}; "
                           f"valid: {', '.join(registered_metrics())}")
    return [_REGISTRY[n] for n in names]


# -- the result keys: which way is better, and their labels ---------------------------------------------------------
def _declaring(key: str) -> type[Metric] | None:
    """The first registered metric class (in :func:`registered_metrics` order) producing ``key``; None if none."""
    return next((_REGISTRY[n] for n in registered_metrics() if key in _REGISTRY[n].keys), None)


def key_info(key: str) -> dict[str, str | None] | None:
    """``{"direction": ..., "label": ...}`` of ``key`` as its registered metric declares them; None if no registered
    metric produces ``key``."""
    cls = _declaring(key)
    return {"direction": cls.directions[key], "label": cls.labels.get(key, key)} if cls else None


def direction(key: str) -> str | None:
    """:data:`LOWER` or :data:`HIGHER` if a registered metric (plug-ins included) declares ``key`` so; None for a key
    declared not optimised (a std) or that no registered metric produces."""
    info = key_info(key)
    return info["direction"] if info else None


def sign(key: str) -> int:
    """``+1`` if higher is better for ``key``, ``-1`` if lower is, ``0`` if neither or unknown (:func:`direction`)."""
    return {HIGHER: 1, LOWER: -1}.get(direction(key), 0)


def label(key: str) -> str:
    """The short label of ``key`` for tables and figures (``"FID"``); the key itself when none is declared."""
    info = key_info(key)
    return str(info["label"]) if info else key


def metric_keys(names: Iterable[str] | None = None) -> dict[str, dict[str, str | None]]:
    """``{key: {"direction": ..., "label": ...}}`` for the result keys of the metrics ``names`` (all registered ones
    when None; unknown names are left out): what a run records in its metrics.json as ``metric_keys``."""
    classes = [_REGISTRY[n] for n in (registered_metrics() if names is None else names) if n in _REGISTRY]
    return {k: {"direction": cls.directions[k], "label": cls.labels.get(k, k)} for cls in classes for k in cls.keys}


def objective_sign(key: str, metrics: Mapping[str, Any] | None = None) -> int:
    """``+1`` (maximise), ``-1`` (minimise) or ``0`` (neither: take the last value) for ``key`` as
    ``train.objective``: the direction recorded in the run's metrics.json (``metrics["metric_keys"]``) when it has
    one, else the registry's (:func:`sign`)."""
    recorded = (metrics or {}).get("metric_keys")
    info = recorded.get(key) if isinstance(recorded, Mapping) else None
    if isinstance(info, Mapping) and "direction" in info:
        return {HIGHER: 1, LOWER: -1}.get(info["direction"], 0)
    return sign(key)
