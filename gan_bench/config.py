"""The config contract: the schemas and the one check of a composed config (a node is built by
:mod:`gan_bench.build`, below every builder; this module stands above them all and checks with the same rules).

* Plain sections (``train``, ``eval``, ``dataset`` by kind, ...) are dataclasses below; a field's
  allowed range is metadata on the field, checked by :func:`check_config` (the only place it is checked).
* Components (``model.generator``, ``model.discriminator``, ``discriminators.projection``, ``loss``, ``aggregation``,
  ``optimizer.rule``, ``optimizer.base``) are ``_target_`` nodes. Each registered option's schema is its class's
  constructor signature (:mod:`gan_bench.registry`), stored in Hydra's ConfigStore as ``schema/<group>/<option>`` and
  named in the defaults list of the option's YAML, so Hydra types the node while composing; the constructor checks
  the values. A user's own class gets its schema from its signature the same way.
* ``stabilizers`` holds one ``_target_`` node per stabiliser (``stabilizers.NAME``): each registered one is always
  there (:func:`default_stabilizers`), typed by its schema, off at its defaults; yours are added to them.
* :func:`check_config` runs on the composed config before anything is written: every node against its schema
  (this also catches keys added with ``+``, which Hydra lets through), the ranges, cross-component rules, and a dry
  build of every component (models on the meta device, the optimizer on a one-parameter game).
"""
from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_bench.build import check_keys, first_line, instantiate, plain, structured, target_class
from gan_bench.data.core import MIXTURES, DatasetName
from gan_bench.errors import ConfigError
from gan_bench.models.ensemble import Layout as EnsembleLayout
from gan_bench.registry import Registry, choice
from gan_bench.stabilizers import REGULARIZER_KEYS, STABILIZERS

Device = choice("Device", ("auto", "cpu", "cuda"))
Progress = choice("Progress", ("auto", "bar", "lines", "off"))
GeneratorKind = choice("GeneratorKind", ("raw", "ema", "uniform"))
ClassifierLayer = choice("ClassifierLayer", ("logits", "penultimate"))
Split = choice("Split", ("train", "test"))
OnNan = choice("OnNan", ("stop", "rollback"))
OnBadFile = choice("OnBadFile", ("error", "skip"))
IMAGE_RESOLUTIONS = (8, 16, 28, 32, 48, 64, 128, 256)


def num(default: Any, low: float | None = None, *, strict: bool = False, high: float | None = None,
        high_strict: bool = False, choices: tuple | None = None) -> Any:
    """A numeric field with its allowed range (``low`` <(=) value <(=) ``high``, or one of ``choices``)."""
    return field(default=default, metadata={"low": low, "strict": strict, "high": high, "high_strict": high_strict,
                                            "choices": choices})


# ------------------------------------------------------------------------------------------------ plain sections
@dataclass
class ImageDatasetConfig:
    name: DatasetName = MISSING
    root: Optional[str] = None  # where the files are (or go, when downloading)
    resolution: int = num(16, choices=IMAGE_RESOLUTIONS)  # images are resized to resolution x resolution
    channels: int = num(1, choices=(1, 3))
    download: bool = True  # try to download when the files are missing (needs network)
    flip: bool = False  # random horizontal flips of real batches
    in_memory: bool = True  # hold the whole set as one uint8 tensor on the training device
    max_images: int = num(0, 0)  # 0 = all
    on_bad_file: OnBadFile = OnBadFile.error  # an unreadable image file: stop naming it, or skip it (counted, logged)


@dataclass
class PointDatasetConfig:
    name: DatasetName = MISSING
    n_points: int = num(50_000, 1)
    std: float = num(0.02, 0, strict=True)
    scale: float = num(2.0, 0, strict=True)  # ring radius / grid spacing


@dataclass
class ModelConfig:
    z_dim: int = num(100, 1)
    generator: Any = MISSING  # a model/generator node (_target_)
    discriminator: Any = MISSING  # a model/discriminator node (_target_)


@dataclass
class DiscriminatorsConfig:
    count: int = num(1, 1)
    spectral_norm: bool = False  # batched spectral normalisation of every Conv2d / Linear of each D
    projection: Any = MISSING  # a discriminators/projection node (_target_)
    # how the K discriminators are evaluated: auto (loop on the CPU, vmap elsewhere), vmap (one vectorised call) or
    # loop (one call per discriminator); the same parameters, optimizer state and checkpoints (may change on resume)
    layout: EnsembleLayout = EnsembleLayout.auto


@dataclass
class LookaheadConfig:  # values checked by gan_bench.optim.lookahead.check_lookahead
    k: int = 0  # 0 = off
    alpha: float = 0.5
    k2: int = 0  # nested "super-slow" level, 0 = off
    alpha2: float = 0.5


@dataclass
class AveragingConfig:  # values checked by gan_bench.optim.averaging.ParamAverage
    ema: float = 0.999  # EMA decay of the generator's parameters (0 = off)
    uniform: bool = False  # also keep the uniform average
    start: int = 0  # iteration at which averaging starts


@dataclass
class OptimizerConfig:
    rule: Any = MISSING  # an optimizer/rule node (_target_): alternating, simultaneous, extragradient, optimistic, svre
    base: Any = MISSING  # an optimizer/base node (_target_): the players' torch optimizer and its shared keys
    g: Any = field(default_factory=dict)  # G's keys of the base optimizer on top of base (lr, betas...); None = base's
    d: Any = field(default_factory=dict)
    lookahead: LookaheadConfig = field(default_factory=LookaheadConfig)
    averaging: AveragingConfig = field(default_factory=AveragingConfig)


def default_stabilizers() -> dict[str, Any]:
    """The ``stabilizers`` section by default: a node per registered stabiliser, typed by its constructor (its schema)
    and at its defaults (each of gan-bench's own is off at them). ``+stabilizers.NAME._target_=...`` or an option of
    your conf/stabilizers/ adds one of yours and ``stabilizers.NAME=null`` leaves one out (checked by check_config)."""
    return {name: STABILIZERS.schema(STABILIZERS.entry(name).cls)() for name in STABILIZERS.names()}


@dataclass
class TrainConfig:
    iterations: int = num(1000, 1)
    batch_size: int = num(64, 1)
    n_dis: int = num(1, 1)
    seed: int = 0
    device: Device = Device.auto
    log_every: int = num(50, 1)
    checkpoint_every: int = num(500, 1)
    sample_every: int = num(500, 1)
    n_grid: int = num(64, 1)  # fixed-noise samples in the grid
    measure_flops: bool = True
    progress: Progress = Progress.auto  # auto (rich bar on a terminal, log lines otherwise) | bar | lines | off
    on_nan: OnNan = OnNan.stop  # non-finite loss, gradient or parameter: stop (status diverged) or roll back
    max_rollbacks: int = num(3, 0)  # on_nan=rollback: at most this many rollbacks, then stop
    rollback_lr_factor: float = num(1.0, 0, strict=True, high=1.0)  # learning rates times this at each rollback
    # a loss of a discriminator's game above this in size is a blow-up (diverged, as for non-finite values): a
    # million needs logits of about 1e6 (NS, minimax, hinge, Wasserstein) or D outputs of 1e3 (LS)
    max_abs_loss: float = num(1e6, 0, strict=True)
    # collapsed (diverged): every D's loss exactly 0 and G's loss above collapse_g_loss at this many consecutive
    # checks (0 = off); NS / minimax G losses of 50 mean D(G(z)) < e^-50
    collapse_checks: int = num(3, 0)
    collapse_g_loss: float = num(50.0, 0)
    objective: Optional[str] = None  # a result key (e.g. fid, mode_kl) a sweep's job returns: its best value (Optuna)


@dataclass
class EvalConfig:
    every: int = num(0, 0)  # 0 = only at the end of training
    metrics: List[str] = field(default_factory=list)  # registered metric names: fid, is, kid, pr, fid_classifier, ...
    n_samples: int = num(10_000, 1)
    batch_size: int = num(200, 1)
    generators: List[GeneratorKind] = field(default_factory=lambda: [GeneratorKind.raw, GeneratorKind.ema])
    split: Split = Split.train  # the real reference: the training set or the test set (the multi-D paper's FID-c)
    inception_weights: Optional[str] = None
    classifier: Optional[str] = None  # null: the dataset's default classifier, found or (digits) trained once
    classifier_layer: ClassifierLayer = ClassifierLayer.logits
    modes_min_count: int = num(1, 1)  # samples a 2-D mode needs to count as covered (PacGAN: 20 of 2,500)
    # image metrics' scale, measured once per protocol and cached: the value of real training images (the best a
    # G can reach at this sample count) and of uniform noise, recorded and printed beside the run's values
    reference_values: bool = False
    cache_dir: Optional[str] = None


@dataclass
class Config:
    dataset: Any = MISSING  # ImageDatasetConfig or PointDatasetConfig, by dataset.name
    model: ModelConfig = field(default_factory=ModelConfig)
    discriminators: DiscriminatorsConfig = field(default_factory=DiscriminatorsConfig)
    aggregation: Any = MISSING  # an aggregation node (_target_)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: Any = MISSING  # a loss node (_target_)
    stabilizers: Dict[str, Any] = field(default_factory=default_stabilizers)  # stabilizers.NAME: a _target_ node
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: Any = field(default_factory=dict)  # logger.NAME: one _target_ node per logger (conf/logger/; LOGGERS)
    name: str = "default"
    resume: Optional[str] = None  # a run directory, a checkpoint file, or true (= this run's directory)
    plugins: List[str] = field(default_factory=list)  # modules imported first (your own metrics or components)


# ------------------------------------------------------------------------------------------------ components
def component_groups() -> dict[str, Registry]:
    """Config path of each ``_target_`` node -> the registry of its options."""
    from gan_bench.aggregation import AGGREGATIONS
    from gan_bench.losses import LOSSES
    from gan_bench.models import DISCRIMINATORS, GENERATORS, PROJECTIONS
    from gan_bench.optim import BASES, RULES

    return {"model.generator": GENERATORS, "model.discriminator": DISCRIMINATORS,
            "discriminators.projection": PROJECTIONS, "loss": LOSSES, "aggregation": AGGREGATIONS,
            "optimizer.rule": RULES, "optimizer.base": BASES}


# schema class name -> (what it describes, its keys, "component" | "section" | "dataset")
_SCHEMA_OWNERS: dict[str, tuple[str, str, str]] = {}


def schema_owner(name: str) -> tuple[str, str, str] | None:
    """What a schema (by class name, as OmegaConf's errors give it) describes: for messages."""
    return _SCHEMA_OWNERS.get(name)


def _own(schema: type, what: str, kind: str) -> type:
    keys = ", ".join(f.name for f in dataclasses.fields(schema) if f.name != "_target_")
    _SCHEMA_OWNERS[schema.__name__] = (what, keys or "none", kind)
    return schema


def register_configs() -> None:
    """Store the primary schema and one schema per registered option (``schema/<group>/<option>``) in Hydra's
    ConfigStore; an option's YAML names its schema in its defaults list."""
    cs = ConfigStore.instance()
    cs.store(name="gan_bench_schema", node=Config)
    cs.store(group="schema/dataset", name="image", node=_own(ImageDatasetConfig, "an image dataset", "dataset"))
    cs.store(group="schema/dataset", name="points", node=_own(PointDatasetConfig, "a 2-D points dataset", "dataset"))
    for section, schema in PLAIN_SECTIONS.items():
        _own(schema, section, "section")
    for schema, where in ((LookaheadConfig, "optimizer.lookahead"), (AveragingConfig, "optimizer.averaging"),
                          (Config, "the config")):
        _own(schema, where, "section")
    for name in STABILIZERS.names():  # typed by the stabilizers section itself (no schema/ entry needed)
        _own(STABILIZERS.schema(STABILIZERS.entry(name).cls), f"stabilizers.{name}", "component")
    for registry in component_groups().values():
        for name in registry.names():
            schema = registry.schema(registry.entry(name).cls)
            if schema is not None:
                node = _own(schema, f"{registry.group}={name}", "component")
                cs.store(group=f"schema/{registry.group}", name=name, node=node)
    from gan_bench.optim import BASES

    for name in BASES.names():  # optimizer.g / optimizer.d: any key of the base optimizer, None = the base's value
        schema = player_schema(BASES.schema(BASES.entry(name).cls))
        cs.store(group="schema/optimizer/player", name=name, node=_own(schema, f"optimizer/base={name}", "component"))


def player_schema(base: type) -> type:
    """The schema of ``optimizer.g`` / ``optimizer.d`` for a base optimizer: its keys, each optional (None = the value
    in ``optimizer.base``)."""
    fields = [(f.name, Optional[f.type] if f.type is not Any else Any, field(default=None))
              for f in dataclasses.fields(base) if f.name != "_target_"]
    return dataclasses.make_dataclass(f"Player{base.__name__}", fields)


# ------------------------------------------------------------------------------------------------ the one check
#: keys of earlier versions -> what replaced them (an old key gets this one line instead of "unknown key")
RENAMED = {
    "model.name": "model=NAME (model.generator / model.discriminator are _target_ nodes now)",
    "model.g_width": "model.generator.width", "model.d_width": "model.discriminator.width",
    "model.depth": "model.generator.depth and model.discriminator.depth",
    "model.g_norm": "model.generator.norm", "model.d_norm": "model.discriminator.norm",
    "model.spectral_norm": "discriminators.spectral_norm",
    "model.minibatch_discrimination": "model.discriminator.minibatch_kernels / minibatch_kernel_dim",
    "model.minibatch_discrimination.b": "model.discriminator.minibatch_kernels",
    "model.minibatch_discrimination.c": "model.discriminator.minibatch_kernel_dim",
    "aggregation.name": "aggregation=NAME", "loss.name": "loss=NAME", "dataset.kind": "dataset=NAME",
    "optimizer.name": "optimizer/base=NAME (adam or sgd)",
    "optimizer.update": "optimizer/rule=NAME (alternating, simultaneous, extragradient, optimistic, svre)",
    "optimizer.svre": "optimizer.rule.KEY with optimizer/rule=svre (epoch_length, refresh, noise_set)",
    **{f"regularizer.{old}": f"stabilizers.{new}" for old, new in REGULARIZER_KEYS.items()},
    "regularizer.unroll": "stabilizers.unrolled.KEY (steps, lr, method)",
    "regularizer": f"stabilizers.NAME.KEY ({', '.join(STABILIZERS.names())})",
}
PLAIN_SECTIONS = {"model": ModelConfig, "discriminators": DiscriminatorsConfig, "optimizer": OptimizerConfig,
                  "train": TrainConfig, "eval": EvalConfig}


def renamed_message(key: str) -> str | None:
    """The one-line message for a key an earlier version used (``key`` or a parent of it), or None."""
    for old, new in RENAMED.items():
        if key == old or key.startswith(old + "."):
            return f"{key} was renamed: use {new}"
    return None


def _check_range(value: Any, meta: dict, where: str) -> None:
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(f"{where}={value} is not supported: use one of {', '.join(map(str, meta['choices']))}")
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta["strict"] and value == low)):
        raise ConfigError(f"{where}={value} is impossible: it must be {'>' if meta['strict'] else '>='} {low:g}")
    if high is not None and (value > high or (meta["high_strict"] and value == high)):
        raise ConfigError(f"{where}={value} is impossible: it must be {'<' if meta['high_strict'] else '<='} {high:g}")


def _check_plain(node: dict, schema: type, where: str) -> None:
    """Keys, types and ranges of a plain section (recursing into nested sections); component nodes inside it are
    checked by :func:`_check_component`."""
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in node:
        if key not in fields:
            full = f"{where}.{key}" if where else key
            raise ConfigError(renamed_message(full) or f"{full} is not a config key; valid keys of "
                              f"{where or 'the config'}: {', '.join(fields)}")
    for key, value in node.items():
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            _check_plain(value, hints[key], f"{where}.{key}" if where else key)
    try:
        OmegaConf.merge(structured(schema), node)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{where}: {first_line(err)}" if where else first_line(err)) from None
    for key, value in node.items():
        if fields[key].metadata and isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_range(value, fields[key].metadata, f"{where}.{key}" if where else key)


def _check_dataset(node: dict) -> str:
    """The dataset node against the schema of its kind; returns the kind ("image" or "points")."""
    kind, schema = ("points", PointDatasetConfig) if node.get("name") in MIXTURES else ("image", ImageDatasetConfig)
    fields = [f.name for f in dataclasses.fields(schema)]
    for key in node:
        if key not in fields:
            raise ConfigError(f"dataset.{key} does not apply to dataset={node.get('name')} (an {kind} dataset; its "
                              f"keys: {', '.join(fields)})" if kind == "image" else
                              f"dataset.{key} does not apply to dataset={node.get('name')} (2-D points; its keys: "
                              f"{', '.join(fields)})")
    _check_plain(node, schema, "dataset")
    return kind


def _import_plugins(modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as err:
            raise ConfigError(f"plugins: cannot import {module} ({first_line(err)})") from None


def _select(tree: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _check_component(spec: Any, where: str, registry: Registry) -> None:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a config node with a _target_ (choose an option of {registry.group}: "
                          f"{', '.join(registry.names())})")
    check_keys(spec, target_class(spec, where), where, registry)


def _check_players(opt: dict) -> None:
    """optimizer.g / optimizer.d hold keys of the base optimizer's class."""
    from gan_bench.optim import BASES

    cls = target_class(opt["base"], "optimizer.base")
    for player in ("g", "d"):
        spec = {**opt["base"], **{k: v for k, v in (opt.get(player) or {}).items() if v is not None}}
        try:
            check_keys(spec, cls, "optimizer.base", BASES)
        except ConfigError as err:
            raise ConfigError(str(err).replace("optimizer.base.", f"optimizer.{player}.", 1)) from None


def metric_names(kind: str | None = None) -> list[str]:
    """The registered metrics (for ``kind``: "image" or "points", when given)."""
    from gan_bench.metrics.registry import IMAGES, POINTS, registered_metrics

    return registered_metrics(None if kind is None else IMAGES if kind == "image" else POINTS)


def _check_combinations(cfg: dict, kind: str) -> None:
    """Rules that involve two components (each component checks its own values when built)."""
    from gan_bench.data.sources import STREAMABLE
    from gan_bench.optim import SVRE

    ds = cfg["dataset"]
    if ds["name"] == "image_folder" and not ds.get("root"):
        raise ConfigError("dataset.root needs a value: add dataset.root=/path/to/images for dataset=image_folder")
    streaming = kind == "image" and not ds["in_memory"] and ds["name"] in STREAMABLE
    if streaming and issubclass(target_class(cfg["optimizer"]["rule"], "optimizer.rule"), SVRE):
        raise ConfigError("optimizer/rule=svre needs a finite sum held in memory: use dataset.in_memory=true")
    unknown = [m for m in cfg["eval"]["metrics"] if m not in metric_names()]
    if unknown:
        raise ConfigError(f"eval.metrics: unknown metric {unknown[0]!r}; registered: {', '.join(metric_names())}")
    objective = cfg["train"].get("objective")
    if objective:
        from gan_bench.metrics import METRICS

        keys = [k for m in cfg["eval"]["metrics"] if m in METRICS for k in METRICS[m]]
        if objective not in keys:
            raise ConfigError(f"train.objective={objective} is not a result of eval.metrics={cfg['eval']['metrics']}; "
                              f"choose one of: {', '.join(keys) or '(add eval.metrics first)'}")
    wrong = [m for m in cfg["eval"]["metrics"] if m not in metric_names(kind)]
    if wrong:
        data = "images" if kind == "image" else "2-D points"
        raise ConfigError(f"eval.metrics: {wrong[0]} does not apply to dataset={ds['name']} ({data}); its metrics: "
                          f"{', '.join(metric_names(kind))}")
    _check_stacked(ds, cfg["eval"]["metrics"], kind)


def _check_stacked(ds: dict, metrics: list[str], kind: str) -> None:
    """Stacked MNIST's digits are its channels: 3 of them, at MNIST's 28 px or more (smaller loses the digits the
    modes are read from); the modes_stacked metric reads one digit per channel of 3-channel images."""
    if ds["name"] == "stacked_mnist" and ds["channels"] != 3:
        raise ConfigError(f"dataset.channels={ds['channels']} does not apply to dataset=stacked_mnist: its R, G and B "
                          "channels are three digits (use dataset.channels=3)")
    if ds["name"] == "stacked_mnist" and ds["resolution"] < 28:
        raise ConfigError(f"dataset.resolution={ds['resolution']} is not supported for dataset=stacked_mnist: its "
                          "digits are 28 px (use 28, 32, 64 or more)")
    if "modes_stacked" in metrics and kind == "image" and ds["channels"] != 3:
        raise ConfigError(f"eval.metrics: modes_stacked reads one digit per channel of 3-channel images "
                          f"(dataset=stacked_mnist), not dataset={ds['name']} with dataset.channels={ds['channels']}")


def data_shape(dataset: dict) -> tuple[int, ...]:
    """The shape of one example, from the dataset config alone."""
    if dataset["name"] in MIXTURES:
        return (2,)
    return (dataset["channels"], dataset["resolution"], dataset["resolution"])


def _dry_build(cfg: DictConfig, tree: dict) -> None:
    """Build every component once, cheaply (one G and one D on the CPU, the optimizer on a one-parameter game), so that
    every constructor's value check runs before anything is written; the global RNG is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        _build_once(cfg, tree)


def _build_once(cfg: DictConfig, tree: dict) -> None:
    import torch

    from gan_bench.aggregation import AGGREGATIONS
    from gan_bench.losses import LOSSES
    from gan_bench.models import build_discriminator, build_generator
    from gan_bench.optim import ParamAverage, build_game_optimizer
    from gan_bench.optim.toy_games import StochasticBilinearGame
    from gan_bench.stabilizers import build_stabilizers

    instantiate(cfg.aggregation, "aggregation", group=AGGREGATIONS, k=cfg.discriminators.count)
    instantiate(cfg.loss, "loss", group=LOSSES)
    shape = data_shape(tree["dataset"])
    build_generator(cfg, shape)
    build_discriminator(cfg, shape)
    toy = StochasticBilinearGame.random(n=2, d=1, a_noise=0.0, bc_noise=0.0)
    build_game_optimizer(cfg.optimizer, toy, n_dis=cfg.train.n_dis)
    av = tree["optimizer"]["averaging"]
    try:
        ParamAverage(torch.nn.Linear(1, 1), "ema", beta=av["ema"], start=av["start"])
    except ValueError as err:
        raise ConfigError(f"optimizer.averaging: {first_line(err)}") from None
    _check_per_sample(build_stabilizers(cfg.stabilizers), tree["model"]["discriminator"])


def _check_per_sample(stabilizers: Any, d: dict) -> None:
    """A stabiliser that differentiates each D output w.r.t. its own sample (``per_sample``: the gradient penalties)
    cannot have a D that mixes the batch."""
    if d.get("norm") == "batch" or d.get("minibatch_kernels", 0) > 0:
        for name, s in stabilizers.named.items():
            if getattr(s, "per_sample", False):
                raise ConfigError(f"stabilizers.{name} needs each D output to depend on its own sample only; "
                                  "model.discriminator.norm=batch and minibatch discrimination mix the batch "
                                  "(use model.discriminator.norm=layer or none)")


def check_config(cfg: DictConfig) -> None:
    """The whole check of a composed config, before anything is built or written: one ConfigError, one line."""
    tree = plain(cfg)
    _import_plugins(tree.get("plugins") or [])
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} needs a value: add {missing[0]}=VALUE")
    _check_plain({k: v for k, v in tree.items() if k not in ("dataset", "stabilizers")}, Config, "")
    kind = _check_dataset(tree["dataset"])
    for where, registry in component_groups().items():
        _check_component(_select(tree, where), where, registry)
    for name, spec in (tree.get("stabilizers") or {}).items():  # gan-bench's own nodes and any of yours
        if spec is not None:
            _check_component(spec, f"stabilizers.{name}", STABILIZERS)
    _check_players(tree["optimizer"])
    _check_combinations(tree, kind)
    _dry_build(cfg, tree)
