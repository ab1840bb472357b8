"""Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 3.2): lets the
discriminator look at the whole minibatch. Pure tensor ops, so it runs under ``torch.func.vmap`` (K stacked Ds)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, Sec. 3.2).

    For features f(x_i) ∈ R^A: M_i = f(x_i)·T with T ∈ R^{A×B×C} (M_i ∈ R^{B×C}),
    c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖₁), o(x_i)_b = Σ_j c_b(x_i, x_j) where the sum runs over
    the whole minibatch *including j = i* (as the paper's formula; that term is exp(0) = 1),
    output [f(x_i), o(x_i)] ∈ R^{A+B}. Input ``[N, A]`` → output ``[N, A + B]``.

    Pure tensor ops, so it runs under ``torch.func.vmap`` (K stacked discriminators).
    """

    def __init__(self, in_features: int, out_features: int, kernel_dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        if min(in_features, out_features, kernel_dim) < 1:
            raise ValueError(
                "in_features, out_features and kernel_dim must be >= 1, "
                f"got {in_features}, {out_features}, {kernel_dim}"
            )
        self.in_features, self.out_features, self.kernel_dim = in_features, out_features, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, out_features, kernel_dim) * init_std)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"expected features of shape [N, {self.in_features}], got {tuple(x.shape)}")
        m = (x @ self.T.reshape(self.in_features, -1)).reshape(x.shape[0], self.out_features, self.kernel_dim)
        mt = m.transpose(0, 1)  # [B, N, C]
        l1 = torch.cdist(mt, mt, p=1)  # [B, N, N]: ‖M_{i,b} − M_{j,b}‖₁, without a [N, N, B, C] intermediate
        o = torch.exp(-l1).sum(dim=2).T  # [N, B]
        return torch.cat([x, o], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel_dim={self.kernel_dim}"
