"""Fréchet distance between two Gaussians, by a symmetric eigen route in float64 on the device.

``d² = |mu1 - mu2|² + tr S1 + tr S2 - 2 tr (S1^½ S2 S1^½)^½`` (Dowson & Landau 1982; FID: Heusel et al. 2017).
``tr sqrtm(S1 S2)`` equals ``tr (S1^½ S2 S1^½)^½`` because ``S1 S2`` is similar to the symmetric PSD matrix
``S1^½ S2 S1^½``; two ``eigh`` calls therefore replace scipy's general (complex, Schur-based) ``sqrtm``: eigh of S1
gives ``S1^½``, eigh of the symmetric product gives the eigenvalues whose square roots are summed. Eigenvalues below
the numerical-rank tolerance ``d * eps * largest`` (as ``numpy.linalg.matrix_rank``), including tiny negatives from
rounding, are set to 0, so identical singular statistics give 0 to rounding, and a negative total (rounding again)
is returned as +0.0. The result is real and finite for any valid input. If ``eigh`` fails to converge, pytorch-fid's
remedy is applied: ``eps`` is added to both diagonals and the computation repeated.
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


def _sqrt_psd(s: torch.Tensor, name: str) -> torch.Tensor:
    values, vectors = _psd_eigh(s, name)
    return (vectors * values.sqrt()) @ vectors.T


def _trace_sqrt_product(sqrt_s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """``tr (S1^½ S2 S1^½)^½`` for symmetric PSD ``S2``, given ``S1^½``."""
    product = sqrt_s1 @ s2 @ sqrt_s1
    values, _ = _psd_eigh((product + product.T) / 2, "sigma2")
    return values.sqrt().sum()


class FrechetReference:
    """One side of the Fréchet distance, ``N(mu1, S1)``, prepared once: validated, symmetrised and with ``S1^½`` kept,
    so that repeated distances to it (the real statistics at every evaluation of a training run) cost one ``eigh``
    instead of two. ``FrechetReference(mu1, S1).distance(mu2, S2) == frechet_distance(mu1, S1, mu2, S2)``.

    Computed in float64 on ``device`` (default CPU; MPS, which lacks float64, falls back to CPU)."""

    def __init__(self, mu: np.ndarray | torch.Tensor, sigma: np.ndarray | torch.Tensor, *,
                 device: torch.device | str | None = None, eps: float = 1e-6) -> None:
        dev = torch.device(device) if device is not None else torch.device("cpu")
        self.device = torch.device("cpu") if dev.type == "mps" else dev
        self.eps = eps
        self.mu, s1 = _as_float64(mu, "mu1", self.device), _as_float64(sigma, "sigma1", self.device)
        if self.mu.ndim != 1:
            raise MetricsError(f"mu1 must be a vector, got shape {tuple(self.mu.shape)}")
        d = self.mu.shape[0]
        if s1.shape != (d, d):
            raise MetricsError(f"sigma1 must be [{d}, {d}] to match the means, got {tuple(s1.shape)}")
        self.sigma = _symmetric(s1, "sigma1")
        try:
            self._sqrt: torch.Tensor | None = _sqrt_psd(self.sigma, "sigma1")
        except torch.linalg.LinAlgError:
            self._sqrt = None  # eigh did not converge: each distance takes pytorch-fid's eps remedy

    def distance(self, mu2: np.ndarray | torch.Tensor, sigma2: np.ndarray | torch.Tensor) -> float:
        m2, s2 = _as_float64(mu2, "mu2", self.device), _as_float64(sigma2, "sigma2", self.device)
        d = self.mu.shape[0]
        if m2.shape != self.mu.shape:
            raise MetricsError(
                f"mu1 and mu2 must be vectors of the same length, got {tuple(self.mu.shape)} and {tuple(m2.shape)}"
            )
        if s2.shape != (d, d):
            raise MetricsError(f"sigma2 must be [{d}, {d}] to match the means, got {tuple(s2.shape)}")
        s2 = _symmetric(s2, "sigma2")
        try:
            if self._sqrt is None:
                raise torch.linalg.LinAlgError("eigh of sigma1 did not converge")
            tr_covmean = _trace_sqrt_product(self._sqrt, s2)
        except torch.linalg.LinAlgError:
            warnings.warn(f"Fréchet distance: eigh did not converge; adding {self.eps} to the diagonal of both "
                          "covariances", stacklevel=2)
            offset = self.eps * torch.eye(d, dtype=torch.float64, device=self.device)
            tr_covmean = _trace_sqrt_product(_sqrt_psd(self.sigma + offset, "sigma1"), s2 + offset)
        diff = self.mu - m2
        value = float(diff @ diff + torch.trace(self.sigma) + torch.trace(s2) - 2 * tr_covmean)
        return 0.0 if value <= 0 else value  # d² >= 0: a negative is rounding (equal inputs), never "-0.000000"


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
    return FrechetReference(mu1, sigma1, device=device, eps=eps).distance(mu2, sigma2)


def rank_deficiency_warning(what: str, dim: int, sets: dict[str, int | None]) -> str | None:
    """One line saying that ``what`` is not comparable when a set (``{description: n}``, n None when unknown) has no
    more rows than the features have dimensions: its covariance then has rank < ``dim``, and the value depends on n."""
    small = [f"{n} {description}" for description, n in sets.items() if n is not None and n <= dim]
    if not small:
        return None
    return (f"{what} from {' and '.join(small)} in {dim} dimensions is not comparable to other values: the covariance "
            f"is rank-deficient (it needs more than {dim} samples per set)")
