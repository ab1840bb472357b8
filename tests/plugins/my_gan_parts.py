"""A user's own components, as a researcher would write them outside gan-bench (the README's "Plug in your own")."""
from __future__ import annotations

import torch
import torch.nn as nn


class TinyD(nn.Module):
    """An MLP discriminator: flattened input -> hidden -> logit; its features are the hidden layer."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(in_shape).prod()), hidden),
                                  nn.LeakyReLU(0.2))
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.body(x)
        logit = self.head(f).squeeze(-1)
        return (logit, f) if return_features else logit


class NoFeaturesD(nn.Module):
    """Breaks the interface: forward has no return_features."""

    def __init__(self, in_shape: tuple[int, ...]):
        super().__init__()
        self.head = nn.Linear(int(torch.tensor(in_shape).prod()), 1)

    def forward(self, x: torch.Tensor):
        return self.head(x.flatten(1)).squeeze(-1)


class BranchingD(TinyD):
    """Breaks the interface: Python branches on a tensor's value (.item()), which a vectorised call cannot do."""

    def forward(self, x: torch.Tensor, return_features: bool = False):
        f = self.body(x)
        if f.abs().max().item() > 100:  # depends on this D's weights: a vectorised call cannot branch on it
            f = f / 100
        logit = self.head(f).squeeze(-1)
        return (logit, f) if return_features else logit


class TwoLogitsD(TinyD):
    """Breaks the interface: two logits per sample."""

    def __init__(self, in_shape: tuple[int, ...], hidden: int = 32):
        super().__init__(in_shape, hidden)
        self.head = nn.Linear(hidden, 2)
