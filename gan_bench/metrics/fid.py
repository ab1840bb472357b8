"""FID (Heusel et al. 2017): the ``fid`` metric, and Inception pool3 statistics of image folders (``gan-bench fid``).

Samples go from ``sample_fn(n) -> images in [-1, 1], NCHW`` straight into pytorch-fid's network on the device (8-bit
rounding as a PNG would do, resize to 299 and ``2x - 1`` inside the network); statistics stream through
:class:`~gan_bench.metrics.stats.StreamingMoments`; the distance is :func:`~gan_bench.metrics.frechet.frechet_distance`.
:class:`FrechetMetric` is the Fréchet distance on any extractor output, shared with the classifier FID.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from PIL import Image

from gan_bench.data.sources import IMAGE_EXTENSIONS
from gan_bench.metrics.errors import MetricsError
from gan_bench.metrics.extractors.base import FeatureExtractor
from gan_bench.metrics.extractors.inception import InceptionExtractor
from gan_bench.metrics.frechet import FrechetReference, frechet_distance, rank_deficiency_warning
from gan_bench.metrics.inception import InceptionFeatures, load_inception, tf32, to_inception_input
from gan_bench.metrics.reference import RealReference
from gan_bench.metrics.registry import LOWER, MOMENTS, FakeFeatures, Metric, Result, register_metric
from gan_bench.metrics.stats import StreamingMoments, load_statistics, save_statistics


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive, like pytorch-fid), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MetricsError(f"{folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise MetricsError(f"{folder} contains no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def folder_batches(files: list[Path], batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of images in [0, 1], NCHW RGB, read as pytorch-fid reads them (``PIL.convert('RGB')``, ``/ 255``)."""
    for start in range(0, len(files), batch_size):
        arrays = []
        for path in files[start : start + batch_size]:
            try:
                with Image.open(path) as img:
                    arrays.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            except OSError as exc:
                raise MetricsError(f"cannot read image {path}: {exc}") from exc
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise MetricsError(f"images in {files[0].parent} have different sizes: {sorted(shapes)}")
        yield torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous().float() / 255


def sample_batches(sample_fn: Callable[[int], torch.Tensor], n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """``n`` generator samples in batches of at most ``batch_size``, as Inception input ([0, 1], 3 channels)."""
    if n < 2:
        raise MetricsError(f"need at least 2 samples for a covariance, got n={n}")
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        with torch.no_grad():
            images = sample_fn(b)
        if images.shape[0] != b:
            raise MetricsError(f"sample_fn({b}) returned {images.shape[0]} images")
        yield to_inception_input(images)
        done += b


def inception_moments(
    batches: Iterable[torch.Tensor], net: InceptionFeatures, device: torch.device | str, *, tf32_on_cuda: bool = True
) -> StreamingMoments:
    """Stream [0, 1] image batches through ``net`` on ``device`` and accumulate pool3 moments there (float64)."""
    device = torch.device(device)
    moments = StreamingMoments(device)
    channels_last = next(net.parameters()).is_contiguous(memory_format=torch.channels_last)
    for batch in batches:  # drawn outside the TF32 scope: a generator behind ``batches`` runs in full fp32
        x = batch.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with tf32(device, tf32_on_cuda):
            pool3, _ = net(x)
        moments.update(pool3)
    return moments


def folder_statistics(
    folder: str | Path, net: InceptionFeatures, *, batch_size: int = 50, device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(mu, sigma, n_images)`` of the pool3 features of the images in ``folder``; ``progress(done, total)`` is
    called after each batch."""
    files = list_images(folder)
    if len(files) < 2:
        raise MetricsError(f"{folder} has {len(files)} image; a covariance needs at least 2")

    def batches():
        done = 0
        for batch in folder_batches(files, batch_size):
            yield batch
            done += len(batch)
            if progress is not None:
                progress(done, len(files))
    moments = inception_moments(batches(), net, device)
    mu, sigma = moments.numpy()
    return mu, sigma, moments.n


def sample_statistics(
    sample_fn: Callable[[int], torch.Tensor],
    n: int,
    net: InceptionFeatures,
    *,
    batch_size: int = 100,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` of the pool3 features of ``n`` samples of ``sample_fn`` (no image files)."""
    return inception_moments(sample_batches(sample_fn, n, batch_size), net, device).numpy()


class FrechetMetric(Metric):
    """The Fréchet distance between the moments of real and generated features (FID, classifier FID).

    The real side is prepared once per Evaluator (:class:`FrechetReference` keeps ``S^½``), so each evaluation costs
    one ``eigh``. With no more samples than feature dimensions the covariance is rank-deficient and the value is
    not comparable to others: :meth:`warning` says so.
    """

    real = MOMENTS
    fake = MOMENTS
    _reference: FrechetReference | None = None

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        return {"n_real": real.n, "n_fake": self.settings.n_samples, "split": self.settings.split,
                **extractor.protocol(), "real_stats": str(real.stats_path)}

    def warning(self, real: RealReference | None) -> str | None:
        sets = {"real samples": real.n, "generated samples": self.settings.n_samples}
        return rank_deficiency_warning(self.name, real.stats[0].shape[0], sets)

    def compute(self, real: RealReference | None, fake: FakeFeatures) -> Result:
        if self._reference is None:
            self._reference = FrechetReference(*real.stats, device=self.settings.device)
        return {self.keys[0]: self._reference.distance(fake.moments.mean, fake.moments.covariance)}


@register_metric
class FID(FrechetMetric):
    """FID: the Fréchet distance of Inception pool3 features, all real rows against ``n_samples`` generated ones."""

    name, keys = "fid", ("fid",)
    directions, labels = {"fid": LOWER}, {"fid": "FID"}
    extractor, output = InceptionExtractor, "pool3"

    def protocol(self, extractor: FeatureExtractor, real: RealReference | None) -> dict[str, Any]:
        return {**super().protocol(extractor, real), "distance": "eigen route, float64"}


def _check_path(path: str) -> None:
    """Fail early, before any network is loaded, on a missing path, an empty folder or a bad statistics file."""
    p = Path(path)
    if not p.exists():
        raise MetricsError(f"{p} does not exist")
    if p.is_file() and p.suffix.lower() != ".npz":
        raise MetricsError(f"{p} is neither a folder of images nor an .npz statistics file")
    if p.is_file():
        load_statistics(p)
    else:
        list_images(p)


def _path_statistics(
    path: str, net_factory: Callable[[], InceptionFeatures], batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    p = Path(path)
    if p.is_file():
        return load_statistics(p)
    net = net_factory()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # on stderr, so stdout holds the FID alone; a bar on a terminal, a few lines otherwise
    console = Console(stderr=True)
    with Progress(TextColumn(f"features of {p}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("features", total=None)
        marks = set()

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            quarter = 4 * done // total
            if not console.is_terminal and quarter not in marks:
                marks.add(quarter)
                print(f"features of {p}: {done}/{total} images", file=sys.stderr, flush=True)
        mu, sigma, n = folder_statistics(p, net, batch_size=batch_size, device=device, progress=progress)
    return mu, sigma, {"n": n, "source": str(p), **net.weights.protocol()}


def fid_cli(argv: list[str]) -> int:
    """``gan-bench fid PATH1 PATH2``: FID between two image folders and/or ``.npz`` statistics files."""
    from gan_bench.commands import fid_parser

    parser = fid_parser()
    args = parser.parse_args(argv)
    try:
        if len(args.paths) > 2 or (len(args.paths) == 1 and not args.save_stats):
            raise MetricsError("give PATH1 PATH2 to compute an FID, or PATH1 --save-stats OUT.npz")
        if args.batch_size < 1:
            raise MetricsError(f"--batch-size must be positive, got {args.batch_size}")
        try:
            device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        except RuntimeError as exc:
            raise MetricsError(f"bad --device {args.device!r}: {exc}") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise MetricsError("--device cuda was asked for but CUDA is not available")
        nets: list[InceptionFeatures] = []

        def net_factory() -> InceptionFeatures:
            if not nets:
                nets.append(load_inception(args.inception_weights, device=device))
                w = nets[0].weights
                print(f"Inception weights: {w.path} ({w.origin})", file=sys.stderr)
            return nets[0]

        for p in args.paths:
            _check_path(p)
        stats = [_path_statistics(p, net_factory, args.batch_size, device) for p in args.paths]
        if args.save_stats:
            mu, sigma, protocol = stats[0]
            print(f"saved statistics of {args.paths[0]} to {save_statistics(args.save_stats, mu, sigma, protocol)}",
                  file=sys.stderr)
        if len(stats) == 2:
            (mu1, s1, p1), (mu2, s2, p2) = stats
            note = rank_deficiency_warning("FID", mu1.shape[0], {f"samples of {args.paths[0]}": p1.get("n"),
                                                                 f"samples of {args.paths[1]}": p2.get("n")})
            if note:
                print(f"warning: {note}", file=sys.stderr)
            print(f"FID: {frechet_distance(mu1, s1, mu2, s2, device=device):.6f}")
    except MetricsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
