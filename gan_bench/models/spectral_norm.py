"""Spectral normalisation of K stacked discriminators (Miyato, Kataoka, Koyama, Yoshida, "Spectral Normalization for
Generative Adversarial Networks", ICLR 2018).

Each weight W of a ``nn.Conv2d`` or ``nn.Linear`` is divided by its largest singular value σ(W), estimated with one
step of power iteration per forward pass from a persistent vector u (a convolution's kernel is read as the matrix
``[out, in * kh * kw]``), so that every layer, and the discriminator, is at most 1-Lipschitz:

    v = Wᵀu / |Wᵀu|,   u' = Wv / |Wv|,   σ = u'ᵀ W v,   W_SN = W / σ

Here the weights are the ensemble's stacked tensors ``[K, out, ...]`` (:mod:`gan_bench.models.ensemble`): one u per
discriminator and layer, ``[K, out]``, the K power iterations as one batched einsum. u and v are constants of the
gradient (as in torch's ``parametrizations.spectral_norm``); σ is differentiated through W.

Switched on for every discriminator by the config's ``discriminators.spectral_norm`` (default false); a
discriminator class must not add torch's own parametrisation (:mod:`gan_bench.models.base`).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def power_vectors(template: nn.Module, stacked: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A random unit vector u per discriminator for each Conv2d / Linear weight of ``template`` (in module order):
    parameter name -> ``[K, out]``, ``stacked`` holding the K discriminators' parameters ``[K, ...]`` by name."""
    vectors = {}
    for mod_name, mod in template.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            name = f"{mod_name}.weight" if mod_name else "weight"
            w = stacked[name]
            vectors[name] = F.normalize(torch.randn(w.shape[0], w.shape[1]), dim=1)
    return vectors


def normalize(params: dict[str, torch.Tensor], vectors: dict[str, torch.Tensor],
              update: bool) -> dict[str, torch.Tensor]:
    """``params`` with each weight named in ``vectors`` divided by its σ (one power-iteration step from its u);
    ``update`` writes the new u back into ``vectors``' tensors (the training forward), otherwise they stay."""
    if not vectors:
        return params
    out = dict(params)
    for name, u in vectors.items():
        w = params[name]
        mat = w.reshape(w.shape[0], w.shape[1], -1)  # [K, out, in * kh * kw]
        with torch.no_grad():
            v = F.normalize(torch.einsum("kom,ko->km", mat, u), dim=1, eps=1e-12)
            u_new = F.normalize(torch.einsum("kom,km->ko", mat, v), dim=1, eps=1e-12)
            if update:
                u.copy_(u_new)
            u_used, v_used = u_new.clone(), v.clone()
        sigma = torch.einsum("ko,kom,km->k", u_used, mat, v_used)
        out[name] = w / sigma.view(-1, *([1] * (w.dim() - 1)))
    return out
