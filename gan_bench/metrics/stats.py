"""Streaming feature moments (mean, covariance) and their ``.npz`` files.

The covariance is accumulated in float64 with the pairwise merge of Chan, Golub & LeVeque (1979): each batch contributes
its own mean and centred scatter ``M2_b = (X_b - m_b)^T (X_b - m_b)``, merged as
``M2 = M2_a + M2_b + (m_b - m_a)(m_b - m_a)^T n_a n_b / n``. No features are held, and the result matches
``numpy.mean`` / ``numpy.cov`` of all rows to rounding.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_bench.files import atomic_write
from gan_bench.metrics.errors import MetricsError


class StreamingMoments:
    """Running mean and covariance of feature rows, in float64 on ``device``."""

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else None
        self.n = 0
        self._mean: torch.Tensor | None = None
        self._m2: torch.Tensor | None = None
        self._finite: torch.Tensor | None = None  # on the device; checked once, when the moments are read

    def update(self, features: torch.Tensor) -> None:
        """Merge a batch of rows ``features [B, d]`` into the running moments."""
        if features.ndim != 2:
            raise MetricsError(f"features must be a 2-D [batch, dim] tensor, got shape {tuple(features.shape)}")
        if self._mean is not None and features.shape[1] != self._mean.shape[0]:
            raise MetricsError(f"feature dimension changed from {self._mean.shape[0]} to {features.shape[1]}")
        if features.shape[0] == 0:
            return
        x = features.to(device=self.device or features.device, dtype=torch.float64)
        finite = torch.isfinite(x).all()  # no host sync per batch
        self._finite = finite if self._finite is None else self._finite & finite
        n_b = x.shape[0]
        mean_b = x.mean(dim=0)
        centred = x - mean_b
        m2_b = centred.T @ centred
        if self._mean is None:
            self.n, self._mean, self._m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + torch.outer(delta, delta) * (self.n * n_b / n)
        self.n = n

    def _check_finite(self) -> None:
        if self._finite is not None and not bool(self._finite):
            raise MetricsError("features contain NaN or infinite values")

    @property
    def mean(self) -> torch.Tensor:
        if self._mean is None:
            raise MetricsError("no features were accumulated")
        self._check_finite()
        return self._mean

    @property
    def covariance(self) -> torch.Tensor:
        """Unbiased sample covariance (divides by n - 1, as ``numpy.cov``)."""
        if self._m2 is None or self.n < 2:
            raise MetricsError(f"a covariance needs at least 2 feature rows, got {self.n}")
        self._check_finite()
        return self._m2 / (self.n - 1)

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, sigma)`` as float64 numpy arrays."""
        return self.mean.cpu().numpy(), self.covariance.cpu().numpy()


def save_statistics(
    path: str | Path, mu: np.ndarray, sigma: np.ndarray, protocol: dict[str, Any] | None = None
) -> Path:
    """Write ``mu``, ``sigma`` (pytorch-fid's keys) and the protocol as JSON text to an ``.npz`` file."""
    text = np.array(json.dumps(protocol or {}, sort_keys=True))
    return atomic_write(path, lambda f: np.savez(f, mu=np.asarray(mu), sigma=np.asarray(sigma), protocol=text))


def load_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read ``(mu, sigma, protocol)`` from an ``.npz`` file (pytorch-fid's files have no protocol: ``{}``)."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"statistics file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("mu", "sigma") if k not in f.files]
            if missing:
                found = ", ".join(f.files) or "nothing"
                raise MetricsError(f"{path} has no {' or '.join(missing)} array (found: {found})")
            mu, sigma = np.asarray(f["mu"], dtype=np.float64), np.asarray(f["sigma"], dtype=np.float64)
            protocol = json.loads(str(f["protocol"])) if "protocol" in f.files else {}
    except MetricsError:
        raise
    except Exception as exc:  # zip/pickle/JSON errors from a corrupt or foreign file
        raise MetricsError(f"cannot read statistics file {path}: {exc}") from exc
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise MetricsError(f"{path}: mu must be [d] and sigma [d, d], got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise MetricsError(f"{path}: mu or sigma contains NaN or infinite values")
    return mu, sigma, protocol
