"""Benchmark: gan-bench's direct FID route vs the route a pytorch-fid user takes, on one device in one run.

gan-bench: generator samples -> 8-bit rounding -> pytorch-fid's Inception on the device -> streaming float64 moments ->
Fréchet distance by the symmetric eigen route on the device.
pytorch-fid user: save N PNGs -> ``pytorch_fid.fid_score.calculate_activation_statistics`` on the folder (DataLoader,
numpy mean/cov) -> ``scipy.linalg.sqrtm`` on the CPU.
Both use the same network weights, the same generator and latents, and the same cached real statistics (sklearn digits
upscaled to 32x32, or ``--real-stats FILE.npz``), so the two FID values should agree to rounding.

    PYTHONPATH=. python3 scripts/bench_fid.py --n 500                  # CPU smoke run
    PYTHONPATH=. python3 scripts/bench_fid.py --n 50000 --device cuda   # the real benchmark

On CUDA the script also runs gan-bench's route in strict fp32 (no TF32, NCHW network) on the same samples and reports
the time ratio, the largest pool3 difference on one batch and the FID's relative difference: gan-bench keeps TF32 and
channels_last on only if that difference stays within 0.1 %.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_activation_statistics
from sklearn.datasets import load_digits
from torch import nn

from gan_bench.metrics.fid import inception_moments, list_images, sample_batches
from gan_bench.metrics.frechet import frechet_distance
from gan_bench.metrics.inception import build_pytorch_fid_inception, load_inception, to_inception_input
from gan_bench.metrics.stats import load_statistics, save_statistics


class RandomDCGAN(nn.Module):
    """An untrained DCGAN generator (Radford et al. 2016): z[100] -> 3x32x32 in [-1, 1]."""

    def __init__(self, z_dim: int = 100, width: int = 64) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z_dim, width * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 4), nn.ReLU(True),
            nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(True),
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
            nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


def make_sample_fn(generator: RandomDCGAN, device: torch.device, seed: int):
    """A sample_fn whose latents come from one seeded stream, so both routes see the same images."""
    gen = torch.Generator(device=device).manual_seed(seed)

    def sample_fn(n: int) -> torch.Tensor:
        return generator(torch.randn(n, generator.z_dim, generator=gen, device=device))

    return sample_fn


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    def __init__(self, device: torch.device) -> None:
        self.device, self.phases = device, {}

    def __call__(self, name: str):
        timer = self

        class _Phase:
            def __enter__(self):
                sync(timer.device)
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                sync(timer.device)
                timer.phases[name] = time.perf_counter() - self.start

        return _Phase()


def real_statistics(args, net, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Cached statistics of the real set: ``--real-stats`` or sklearn digits (8 -> 32 px, gray -> RGB)."""
    path = Path(args.real_stats or Path(args.workdir) / f"digits32-n{args.n_real}-stats.npz")
    if not path.is_file():
        images = torch.tensor(load_digits().images[: args.n_real], dtype=torch.float32)[:, None] / 8 - 1
        images = torch.nn.functional.interpolate(images, size=(32, 32), mode="nearest")
        batches = (to_inception_input(b) for b in images.split(args.batch_size))
        mu, sigma = inception_moments(batches, net, device).numpy()
        save_statistics(path, mu, sigma, {"n": len(images), "source": "sklearn digits, 32px", **net.weights.protocol()})
    mu, sigma, _ = load_statistics(path)
    return mu, sigma


def precision_check(args, net, generator, device, mu_real, sigma_real, fid_fast: float, fast_s: float) -> dict:
    """gan-bench's route again in strict fp32 (TF32 off, NCHW network) on the same samples."""
    strict = load_inception(args.inception_weights, device=device, channels_last=False)
    probe = to_inception_input(make_sample_fn(generator, device, args.seed)(min(args.batch_size, args.n)).detach())
    from gan_bench.metrics.inception import tf32

    with torch.no_grad():
        with tf32(device, True):
            fast_feat, _ = net(probe.contiguous(memory_format=torch.channels_last))
        with tf32(device, False):
            strict_feat, _ = strict(probe)
    sync(device)
    start = time.perf_counter()
    moments = inception_moments(sample_batches(make_sample_fn(generator, device, args.seed), args.n, args.batch_size),
                                strict, device, tf32_on_cuda=False)
    mean, covariance = moments.mean, moments.covariance  # (reading them waits for the device)
    elapsed = time.perf_counter() - start
    fid_fp32 = frechet_distance(mu_real, sigma_real, mean, covariance, device=device)
    return {"fp32_features_s": elapsed, "speedup": elapsed / fast_s, "fid_fp32": fid_fp32,
            "fid_rel_diff": abs(fid_fast - fid_fp32) / abs(fid_fp32),
            "pool3_max_abs_diff": float((fast_feat - strict_feat).abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="generated samples")
    parser.add_argument("--n-real", type=int, default=500, help="real images for the cached statistics (<= 1797)")
    parser.add_argument("--real-stats", default=None, help="use this .npz of real statistics instead")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--num-workers", type=int, default=min(8, os.cpu_count() or 1), help="pytorch-fid DataLoader")
    parser.add_argument("--workdir", default=None, help="where the PNGs and cached statistics go (default: temp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision-check", choices=("auto", "on", "off"), default="auto",
                        help="also time strict fp32 and compare the FID (auto: on CUDA only)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON")
    args = parser.parse_args()
    device = torch.device(args.device)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="bench_fid_")
    torch.manual_seed(args.seed)
    generator = RandomDCGAN().to(device).eval()

    ours, theirs = Timer(device), Timer(device)
    with ours("load network"):
        net = load_inception(args.inception_weights, device=device)
    mu_real, sigma_real = real_statistics(args, net, device)  # cached, outside both timings

    with ours("sample + features + moments"):
        moments = inception_moments(sample_batches(make_sample_fn(generator, device, args.seed), args.n,
                                                   args.batch_size), net, device)
    with ours("Fréchet distance"):
        fid_ours = frechet_distance(mu_real, sigma_real, moments.mean, moments.covariance, device=device)

    precision = None
    if args.precision_check == "on" or (args.precision_check == "auto" and device.type == "cuda"):
        precision = precision_check(args, net, generator, device, mu_real, sigma_real, fid_ours,
                                    ours.phases["sample + features + moments"])

    with theirs("load network"):
        state_dict = torch.load(net.weights.path, map_location="cpu", weights_only=True)
        state_dict = state_dict.get("state_dict", state_dict)
        pf_net = build_pytorch_fid_inception(state_dict).to(device)
    folder = Path(args.workdir) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    with theirs("sample + save PNGs"):
        sample_fn, index = make_sample_fn(generator, device, args.seed), 0
        for start in range(0, args.n, args.batch_size):
            with torch.no_grad():
                x = to_inception_input(sample_fn(min(args.batch_size, args.n - start)))
            pixels = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for img in pixels:
                Image.fromarray(img).save(folder / f"{index:06d}.png")
                index += 1
    with theirs("features + moments (folder)"):
        mu_fake, sigma_fake = calculate_activation_statistics(
            list_images(folder), pf_net, batch_size=args.batch_size, dims=2048, device=device,
            num_workers=args.num_workers,
        )
    with theirs("Fréchet distance"):
        diff = mu_real - mu_fake
        covmean = scipy.linalg.sqrtm(sigma_real @ sigma_fake).real
        fid_theirs = float(diff @ diff + np.trace(sigma_real) + np.trace(sigma_fake) - 2 * np.trace(covmean))

    print(f"\nFID benchmark: N = {args.n} generated 32x32 samples, device {device}, "
          f"weights {net.weights.path.name} ({net.weights.origin})")
    o, t = ours.phases, theirs.phases
    rows = [
        ("load network", o["load network"], t["load network"]),
        ("sample + features + moments", o["sample + features + moments"],
         t["sample + save PNGs"] + t["features + moments (folder)"]),
        ("  of which: sample + save PNGs", None, t["sample + save PNGs"]),
        ("  of which: folder -> moments", None, t["features + moments (folder)"]),
        ("Fréchet distance", o["Fréchet distance"], t["Fréchet distance"]),
    ]
    print(f"{'phase':<32} {'gan-bench [s]':>14} {'pytorch-fid [s]':>16}")
    for label, mine, other in rows:
        print(f"{label:<32} {'' if mine is None else f'{mine:.2f}':>14} {other:>16.2f}")
    total_ours, total_theirs = sum(ours.phases.values()), sum(theirs.phases.values())
    print(f"{'total':<32} {total_ours:>14.2f} {total_theirs:>16.2f}")
    print(f"speed-up (pytorch-fid route / gan-bench): {total_theirs / total_ours:.2f}x")
    print(f"FID gan-bench {fid_ours:.6f}  pytorch-fid route {fid_theirs:.6f}  "
          f"relative difference {abs(fid_ours - fid_theirs) / abs(fid_theirs):.2e}")
    if precision is not None:
        print(f"precision: strict fp32 NCHW features {precision['fp32_features_s']:.2f} s vs TF32 + channels_last "
              f"{o['sample + features + moments']:.2f} s ({precision['speedup']:.2f}x); pool3 max |diff| "
              f"{precision['pool3_max_abs_diff']:.2e}; FID fp32 {precision['fid_fp32']:.6f}, relative difference "
              f"{precision['fid_rel_diff']:.2e} ({'within' if precision['fid_rel_diff'] <= 1e-3 else 'OUTSIDE'} 0.1 %)")
    if args.json:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        result = {"n": args.n, "device": name, "weights": str(net.weights.path.name), "gan_bench": o, "pytorch_fid": t,
                  "total_gan_bench": total_ours, "total_pytorch_fid": total_theirs,
                  "fid_gan_bench": fid_ours, "fid_pytorch_fid": fid_theirs, "precision": precision}
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
