"""Fréchet distance between two Gaussians, by a symmetric eigen route in float64 on the device.

``d² = |mu1 - mu2|² + tr S1 + tr S2 - 2 tr (S1^½ S2 S1^½)^½`` (Dowson & Landau 1982; FID: Heusel et al. 2017).
``tr sqrtm(S1 S2)`` equals ``tr (S1^½ S2 S1^½)^½`` because ``S1 S2`` is similar to the symmetric PSD matrix
``S1^½ S2 S1^½``; two ``eigh`` calls therefore replace scipy's general (complex, Schur-based) ``sqrtm``: eigh of S1
gives ``S1^½``, eigh of the symmetric product gives the eigenvalues whose square roots are summed. Eigenvalues below
the numerical-rank tolerance ``d * eps * largest`` (as ``numpy.linalg.matrix_rank``), including tiny negatives from
rounding, are set to 0, so identical singular statistics give 0 to rounding. The result is real and finite for any
valid input. If ``eigh`` fails to converge, pytorch-fid's remedy is applied: ``eps`` is added to both diagonals and
the computation repeated.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from gan_bench.metrics.errors import MetricsError

_SYMMETRY_RTOL = 1e-4  # float32 covariance files are symmetric only to rounding
_PSD_RTOL = 1e-5  # eigenvalues below -rtol * largest eigenvalue mean the matrix is not a covariance


def _as_float64(x: np.ndarray | torch.Tensor, name: str, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    t = t.detach().to(device=device, dtype=torch.float64)
    if not torch.isfinite(t).all():
        raise MetricsError(f"{name} contains NaN or infinite values")
    return t


def _symmetric(s: torch.Tensor, name: str) -> torch.Tensor:
    scale = s.abs().max().clamp_min(torch.finfo(torch.float64).tiny)
    if ((s - s.T).abs().max() / scale) > _SYMMETRY_RTOL:
        raise MetricsError(f"{name} is not symmetric, so it is not a covariance matrix")
    return (s + s.T) / 2


def _psd_eigh(s: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of a symmetric matrix that must be positive semi-definite; rounding noise -> 0."""
    values, vectors = torch.linalg.eigh(s)
    if not (torch.isfinite(values).all() and torch.isfinite(vectors).all()):
        raise torch.linalg.LinAlgError(f"eigh of {name} returned non-finite values")
    top = values.abs().max()
    if values.min() < -_PSD_RTOL * top:
        raise MetricsError(
            f"{name} is not positive semi-definite (eigenvalue {values.min().item():.3g} vs largest {top.item():.3g})"
        )
    # numerical rank (as numpy.linalg.matrix_rank): eigenvalues below d * eps * largest are rounding noise, whose
    # square roots would otherwise add O(sqrt(eps)) to the trace
    noise = values.shape[0] * torch.finfo(values.dtype).eps * top
    return torch.where(values > noise, values, torch.zeros_like(values)), vectors


def _trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """``tr (S1^½ S2 S1^½)^½`` for symmetric PSD ``S1``, ``S2``."""
    values1, vectors1 = _psd_eigh(s1, "sigma1")
    sqrt_s1 = (vectors1 * values1.sqrt()) @ vectors1.T
    product = sqrt_s1 @ s2 @ sqrt_s1
    values, _ = _psd_eigh((product + product.T) / 2, "sigma2")
    return values.sqrt().sum()


def frechet_distance(
    mu1: np.ndarray | torch.Tensor,
    sigma1: np.ndarray | torch.Tensor,
    mu2: np.ndarray | torch.Tensor,
    sigma2: np.ndarray | torch.Tensor,
    *,
    device: torch.device | str | None = None,
    eps: float = 1e-6,
) -> float:
    """Squared Fréchet distance ``|mu1-mu2|² + tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½)`` of N(mu1, S1) and N(mu2, S2).

    Computed in float64 on ``device`` (default CPU; MPS, which lacks float64, falls back to CPU).
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "mps":
        dev = torch.device("cpu")
    m1, m2 = _as_float64(mu1, "mu1", dev), _as_float64(mu2, "mu2", dev)
    s1, s2 = _as_float64(sigma1, "sigma1", dev), _as_float64(sigma2, "sigma2", dev)
    if m1.ndim != 1 or m2.ndim != 1 or m1.shape != m2.shape:
        raise MetricsError(
            f"mu1 and mu2 must be vectors of the same length, got {tuple(m1.shape)} and {tuple(m2.shape)}"
        )
    d = m1.shape[0]
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise MetricsError(f"{name} must be [{d}, {d}] to match the means, got {tuple(s.shape)}")
    s1, s2 = _symmetric(s1, "sigma1"), _symmetric(s2, "sigma2")
    try:
        tr_covmean = _trace_sqrt_product(s1, s2)
    except torch.linalg.LinAlgError:
        warnings.warn(f"Fréchet distance: eigh did not converge; adding {eps} to the diagonal of both covariances")
        offset = eps * torch.eye(d, dtype=torch.float64, device=dev)
        tr_covmean = _trace_sqrt_product(s1 + offset, s2 + offset)
    diff = m1 - m2
    return float(diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean)
