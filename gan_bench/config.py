"""Structured config schemas (Hydra ConfigStore) and the value checks Hydra cannot express.

Hydra already rejects unknown keys, wrong types and unknown group options (listing the valid ones);
:func:`validate` rejects impossible values with one readable sentence before anything is trained.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from gan_bench.errors import ConfigError

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar10_64", "svhn", "stl10", "celeba", "image_folder")
POINT_DATASETS = ("ring8", "grid25")
MODELS = ("mlp", "dcgan")
LOSSES = ("ns", "minimax", "ls", "hinge", "wasserstein")
AGGREGATIONS = ("avg", "gman", "gman_auto", "hv", "mgd")
BASE_OPTIMIZERS = ("sgd", "adam")
RULES = ("alternating", "simultaneous", "extragradient", "optimistic", "svre")
PENALTIES = ("none", "wgan_gp", "r1", "dragan")
G_NORMS = ("batch", "vbn", "none")
D_NORMS = ("none", "batch", "layer")
PROJECTIONS = ("none", "random")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class DatasetConfig:
    name: str = "digits"
    root: Optional[str] = None  # where the files are (or go, when downloading)
    resolution: int = 16  # images are resized to resolution x resolution
    channels: int = 1
    download: bool = True  # try to download when the files are missing (needs network)
    flip: bool = False  # random horizontal flips of real batches
    in_memory: bool = True  # hold the whole set as one uint8 tensor on the training device
    max_images: int = 0  # 0 = all
    # 2-D Gaussian mixtures (ring8, grid25)
    n_points: int = 50_000
    std: float = 0.02
    scale: float = 2.0  # ring radius / grid spacing


@dataclass
class MinibatchDiscriminationConfig:
    b: int = 0  # number of kernels B (0 = off)
    c: int = 5  # kernel dimension C


@dataclass
class ModelConfig:
    name: str = "dcgan"
    z_dim: int = 100
    g_width: int = 64  # DCGAN: channels of the last G block (ngf); MLP: hidden width of G
    d_width: int = 64  # DCGAN: channels of the first D block (ndf); MLP: hidden width of D
    depth: int = 3  # MLP hidden layers
    g_norm: str = "batch"
    d_norm: str = "none"
    spectral_norm: bool = False
    minibatch_discrimination: MinibatchDiscriminationConfig = field(default_factory=MinibatchDiscriminationConfig)


@dataclass
class DiscriminatorsConfig:
    count: int = 1
    projection: str = "none"  # "random": each D sees its own frozen random projection of the input


@dataclass
class AggregationConfig:
    name: str = "avg"
    reduction: str = "mean"  # avg: mean or sum (the paper's code sums)
    lam: float = 0.8  # gman softmax temperature (initial value for gman_auto)
    delta: float = 1.5  # hv nadir slack, eta = max(delta * max_k l_k, eps)
    eps: float = 1e-6
    normalize: bool = False  # mgd: use w*/||w*||
    solver: str = "auto"  # mgd: exact (K <= 12) | interior_point | frank_wolfe | auto (exact up to K = 12, then interior_point)
    max_iter: int = 100


@dataclass
class LossConfig:
    name: str = "ns"
    real_label: float = 1.0  # 0.9 = one-sided label smoothing (fake target stays 0)


@dataclass
class UnrollConfig:
    steps: int = 0
    lr: float = 0.0  # step size of the unrolled updates (0 = the discriminator's learning rate)
    method: str = "sgd"  # sgd | adam (D's own update rule, moments from D's optimizer state as in Metz et al.'s code)


@dataclass
class RegularizerConfig:
    gp: str = "none"
    gp_weight: float = 10.0
    instance_noise: float = 0.0  # initial std of instance noise (0 = off)
    instance_noise_anneal: int = 0  # iterations to anneal the std linearly to 0 (0 = constant)
    feature_matching: float = 0.0  # weight of Salimans et al.'s feature matching term (0 = off)
    feature_matching_only: bool = False  # G minimises only the feature matching term
    historical_averaging: float = 0.0  # weight of the historical averaging penalty, both players (0 = off)
    unroll: UnrollConfig = field(default_factory=UnrollConfig)


@dataclass
class PlayerOptimConfig:
    lr: float = 2e-4
    betas: List[float] = field(default_factory=lambda: [0.5, 0.999])
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class LookaheadConfig:
    k: int = 0  # 0 = off
    alpha: float = 0.5
    k2: int = 0  # nested "super-slow" level, 0 = off
    alpha2: float = 0.5


@dataclass
class SVREConfig:
    epoch_length: int = 100
    refresh: str = "random"  # random (probability 1/epoch_length, as the authors' code) | epoch
    noise_set: int = 0  # size of the fixed noise set of the finite sum (0 = dataset size)


@dataclass
class AveragingConfig:
    ema: float = 0.999  # EMA decay of the generator's parameters (0 = off)
    uniform: bool = False  # also keep the uniform average
    start: int = 0  # iteration at which averaging starts


@dataclass
class OptimizerConfig:
    name: str = "adam"
    # the update rule: alternating | simultaneous | extragradient | optimistic | svre. Read it as
    # cfg.optimizer["update"]: attribute access would find DictConfig.update (the dict method).
    update: str = "alternating"
    g: PlayerOptimConfig = field(default_factory=PlayerOptimConfig)
    d: PlayerOptimConfig = field(default_factory=PlayerOptimConfig)
    lookahead: LookaheadConfig = field(default_factory=LookaheadConfig)
    svre: SVREConfig = field(default_factory=SVREConfig)
    averaging: AveragingConfig = field(default_factory=AveragingConfig)


@dataclass
class TrainConfig:
    iterations: int = 1000
    batch_size: int = 64
    n_dis: int = 1
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 500
    sample_every: int = 500
    n_grid: int = 64  # fixed-noise samples in the grid
    measure_flops: bool = True
    progress: str = "auto"  # auto (rich bar on a terminal, log lines otherwise) | bar | lines | off


@dataclass
class EvalConfig:
    every: int = 0  # 0 = only at the end of training
    metrics: List[str] = field(default_factory=list)  # fid, is, kid, pr, fid_classifier, modes
    n_samples: int = 10_000
    batch_size: int = 200
    generators: List[str] = field(default_factory=lambda: ["raw", "ema"])
    inception_weights: Optional[str] = None
    classifier: Optional[str] = None
    classifier_layer: str = "logits"
    modes_min_count: int = 1  # samples a 2-D mode needs to count as covered (PacGAN: 20 of 2,500)
    cache_dir: Optional[str] = None


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    discriminators: DiscriminatorsConfig = MISSING
    aggregation: AggregationConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    loss: LossConfig = MISSING
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    name: str = "default"
    resume: Optional[str] = None  # a run directory, a checkpoint file, or true (= this run's directory)


def register_configs() -> None:
    ConfigStore.instance().store(name="gan_bench_schema", node=Config)


def _one_of(where: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}={value!r} is not valid; choose one of: {', '.join(map(str, allowed))}")


def _positive(where: str, value: float, strict: bool = True) -> None:
    if value < 0 or (strict and value == 0):
        raise ConfigError(f"{where}={value} is impossible: it must be {'> 0' if strict else '>= 0'}")


def validate(cfg: Any) -> None:
    """Reject impossible values with one readable sentence (dataset-size checks happen once data is loaded)."""
    d, m = cfg.dataset, cfg.model
    _one_of("dataset.name", d.name, IMAGE_DATASETS + POINT_DATASETS)
    _one_of("model.name", m.name, MODELS)
    _one_of("model.g_norm", m.g_norm, G_NORMS)
    _one_of("model.d_norm", m.d_norm, D_NORMS)
    _one_of("discriminators.projection", cfg.discriminators.projection, PROJECTIONS)
    _one_of("aggregation.name", cfg.aggregation.name, AGGREGATIONS)
    _one_of("aggregation.reduction", cfg.aggregation.reduction, ("mean", "sum"))
    _one_of("aggregation.solver", cfg.aggregation.solver, ("auto", "exact", "interior_point", "frank_wolfe"))
    if cfg.aggregation.name == "mgd" and cfg.aggregation.solver == "exact" and cfg.discriminators.count > 12:
        raise ConfigError(f"aggregation.solver=exact enumerates the simplex's faces and is limited to 12 "
                          f"discriminators (got {cfg.discriminators.count}); use aggregation.solver=auto, interior_point or frank_wolfe")
    _one_of("loss.name", cfg.loss.name, LOSSES)
    _one_of("optimizer.name", cfg.optimizer.name, BASE_OPTIMIZERS)
    _one_of("optimizer.update", cfg.optimizer["update"], RULES)
    _one_of("optimizer.svre.refresh", cfg.optimizer.svre.refresh, ("random", "epoch"))
    _one_of("regularizer.gp", cfg.regularizer.gp, PENALTIES)
    _one_of("train.device", cfg.train.device, DEVICES)
    _one_of("train.progress", cfg.train.progress, ("auto", "bar", "lines", "off"))
    if cfg.discriminators.count < 1:
        raise ConfigError(f"discriminators.count={cfg.discriminators.count} is impossible: at least 1 discriminator is needed")
    if d.name in POINT_DATASETS and m.name != "mlp":
        raise ConfigError(f"dataset={d.name} holds 2-D points: use model=mlp (got model={m.name})")
    if d.name in IMAGE_DATASETS and m.name == "mlp":
        raise ConfigError(f"dataset={d.name} holds images: use model=dcgan (got model=mlp)")
    if d.name in IMAGE_DATASETS:
        if d.resolution < 8 or (d.resolution not in (28,) and d.resolution & (d.resolution - 1)):
            raise ConfigError(f"dataset.resolution={d.resolution} is not supported: use 8, 16, 28, 32, 64, 128 or 256")
        _one_of("dataset.channels", d.channels, (1, 3))
    for name, player in (("g", cfg.optimizer.g), ("d", cfg.optimizer.d)):
        _positive(f"optimizer.{name}.lr", player.lr)
        if len(player.betas) != 2 or not all(0.0 <= b < 1.0 for b in player.betas):
            raise ConfigError(f"optimizer.{name}.betas={list(player.betas)} is impossible: two values in [0, 1) are needed")
        _positive(f"optimizer.{name}.momentum", player.momentum, strict=False)
        _positive(f"optimizer.{name}.weight_decay", player.weight_decay, strict=False)
    la = cfg.optimizer.lookahead
    _positive("optimizer.lookahead.k", la.k, strict=False)
    _positive("optimizer.lookahead.k2", la.k2, strict=False)
    for key, alpha in (("alpha", la.alpha), ("alpha2", la.alpha2)):
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"optimizer.lookahead.{key}={alpha} is impossible: it must lie in (0, 1]")
    _positive("optimizer.svre.epoch_length", cfg.optimizer.svre.epoch_length)
    ema = cfg.optimizer.averaging.ema
    if not 0.0 <= ema < 1.0:
        raise ConfigError(f"optimizer.averaging.ema={ema} is impossible: it must lie in [0, 1) (0 = off)")
    if cfg.aggregation.name == "hv" and cfg.aggregation.delta <= 1.0:
        raise ConfigError(f"aggregation.delta={cfg.aggregation.delta} is impossible: hypervolume needs delta > 1")
    if cfg.loss.real_label != 1.0 and cfg.loss.name in ("hinge", "wasserstein"):
        raise ConfigError(f"loss.real_label={cfg.loss.real_label}: one-sided label smoothing applies to the ns, minimax "
                          f"and ls losses, not to loss={cfg.loss.name}")
    if not 0.0 < cfg.loss.real_label <= 1.0:
        raise ConfigError(f"loss.real_label={cfg.loss.real_label} is impossible: it must lie in (0, 1]")
    t = cfg.train
    for key in ("iterations", "batch_size", "n_dis", "log_every", "checkpoint_every", "sample_every", "n_grid"):
        _positive(f"train.{key}", getattr(t, key))
    _positive("model.z_dim", m.z_dim)
    _positive("model.g_width", m.g_width)
    _positive("model.d_width", m.d_width)
    _positive("regularizer.gp_weight", cfg.regularizer.gp_weight, strict=False)
    _positive("regularizer.instance_noise", cfg.regularizer.instance_noise, strict=False)
    _positive("regularizer.feature_matching", cfg.regularizer.feature_matching, strict=False)
    _positive("regularizer.historical_averaging", cfg.regularizer.historical_averaging, strict=False)
    _positive("regularizer.unroll.steps", cfg.regularizer.unroll.steps, strict=False)
    _one_of("regularizer.unroll.method", cfg.regularizer.unroll.method, ("sgd", "adam"))
    _positive("regularizer.unroll.lr", cfg.regularizer.unroll.lr, strict=False)
    _positive("optimizer.svre.noise_set", cfg.optimizer.svre.noise_set, strict=False)
    _positive("eval.modes_min_count", cfg.eval.modes_min_count)
    if cfg.regularizer.gp != "none" and (m.d_norm == "batch" or m.minibatch_discrimination.b > 0):
        raise ConfigError(f"regularizer.gp={cfg.regularizer.gp} needs each D output to depend on its own sample only; "
                          "model.d_norm=batch and minibatch discrimination mix the batch (use model.d_norm=layer or none)")
    if cfg.regularizer.feature_matching_only and cfg.regularizer.feature_matching == 0:
        raise ConfigError("regularizer.feature_matching_only=true needs regularizer.feature_matching > 0")
    e = cfg.eval
    _positive("eval.every", e.every, strict=False)
    _positive("eval.n_samples", e.n_samples)
    _positive("eval.batch_size", e.batch_size)
    for g in e.generators:
        _one_of("eval.generators", g, ("raw", "ema", "uniform"))
    _one_of("eval.classifier_layer", e.classifier_layer, ("logits", "penultimate"))
