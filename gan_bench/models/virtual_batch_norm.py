"""Virtual batch normalisation (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.4): batch norm
against a fixed reference batch, with the helpers :func:`vbn_reference_pass` and :func:`vbn_forward` that run the
two passes it needs.

Using VBN in a generator (``model.generator.norm=vbn``): build the network with ``VirtualBatchNorm`` where
it would have ``BatchNorm``, draw the reference noise once at construction and keep it in a buffer
so it is checkpointed, and route the forward through :func:`vbn_forward`::

    class Generator(nn.Module):
        def __init__(self, nz: int, ...):
            super().__init__()
            self.net = nn.Sequential(..., VirtualBatchNorm(c), nn.ReLU(), ...)
            self.register_buffer("vbn_reference", torch.randn(64, nz, 1, 1))

        def forward(self, z: Tensor) -> Tensor:
            return vbn_forward(self.net, self.vbn_reference, z)

Each call re-runs the reference batch with the current parameters (as in Salimans et al., the
reference statistics are part of the graph), so the cost is one extra forward of R samples.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalisation (Salimans et al. 2016, Sec. 3.4).

    Each sample x_i is normalised with the statistics of the reference batch plus itself: per
    channel, over the reference batch ∪ {x_i} (and the spatial positions, for feature maps
    ``[N, C, H, W]``; ``[N, C]`` features have none), i.e. weights R/(R+1) for the reference batch
    of R samples and 1/(R+1) for x_i:

        μ_i = R/(R+1)·μ_ref + 1/(R+1)·μ(x_i),
        σ²_i = R/(R+1)·(σ²_ref + (μ_ref − μ_i)²) + 1/(R+1)·(σ²(x_i) + (μ(x_i) − μ_i)²),
        y_i = γ·(x_i − μ_i)/√(σ²_i + eps) + β   (biased variances, learnable γ, β per channel).

    Two passes: inside :func:`vbn_reference_pass` the module normalises the reference batch with
    its own statistics and records them (μ_ref, σ²_ref, R, still attached to the graph); outside
    it, inputs are normalised against the recorded statistics (:func:`vbn_forward` does both).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.recording = False
        self.reference: tuple[Tensor, Tensor, int] | None = None  # (μ_ref [C], σ²_ref [C], R)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected input [N, {self.num_features}, ...], got {tuple(x.shape)}")
        spatial = tuple(range(2, x.dim()))
        if self.recording:
            dims = (0,) + spatial
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, correction=0)
            self.reference = (mean, var, x.shape[0])
            return self._normalize(x, mean, var)
        if self.reference is None:
            raise RuntimeError(
                "VirtualBatchNorm has no reference statistics: run the reference batch first "
                "(vbn_forward(net, reference, x) or `with vbn_reference_pass(net): net(reference)`)"
            )
        ref_mean, ref_var, r = self.reference
        if spatial:
            x_mean, x_var = x.mean(dim=spatial), x.var(dim=spatial, correction=0)  # [N, C]
        else:
            x_mean, x_var = x, torch.zeros_like(x)
        w_ref, w_x = r / (r + 1), 1 / (r + 1)
        mean = w_ref * ref_mean + w_x * x_mean
        var = w_ref * (ref_var + (ref_mean - mean).pow(2)) + w_x * (x_var + (x_mean - mean).pow(2))
        return self._normalize(x, mean, var)

    def _normalize(self, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """(x − mean)/√(var + eps)·γ + β; mean, var are [C] or [N, C]."""
        trailing = (1,) * (x.dim() - 2)
        mean, var = mean.reshape(*mean.shape, *trailing), var.reshape(*var.shape, *trailing)
        weight, bias = self.weight.reshape(-1, *trailing), self.bias.reshape(-1, *trailing)
        return (x - mean) / torch.sqrt(var + self.eps) * weight + bias

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def _vbn_layers(module: nn.Module) -> list[VirtualBatchNorm]:
    layers = [m for m in module.modules() if isinstance(m, VirtualBatchNorm)]
    if not layers:
        raise ValueError("the module contains no VirtualBatchNorm layer")
    return layers


@contextmanager
def vbn_reference_pass(module: nn.Module) -> Iterator[None]:
    """Within the block, every :class:`VirtualBatchNorm` of ``module`` records the statistics of
    its input as the reference (and normalises that input with them)."""
    layers = _vbn_layers(module)
    for layer in layers:
        layer.recording = True
    try:
        yield
    finally:
        for layer in layers:
            layer.recording = False


def vbn_forward(module: nn.Module, reference: Tensor, x: Tensor) -> Tensor:
    """Two-pass VBN forward: run ``reference`` through ``module`` recording per-layer reference
    statistics, then return ``module(x)`` normalised against them. The recorded statistics are
    released afterwards, so no stale graph outlives the call."""
    layers = _vbn_layers(module)
    try:
        with vbn_reference_pass(module):
            module(reference)
        return module(x)
    finally:
        for layer in layers:
            layer.reference = None
