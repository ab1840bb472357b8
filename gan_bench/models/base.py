"""The two model groups and what a generator or discriminator must provide (config ``model.generator`` /
``model.discriminator``, each a ``_target_`` node; ``model.z_dim`` is shared).

A generator is built as ``cls(z_dim=..., out_shape=(C, H, W) or (d,), **its keys)`` and maps ``z [B, z_dim]`` to
samples of ``out_shape`` (images in [-1, 1]). A discriminator is built as ``cls(in_shape=..., **its keys)`` — one
instance per discriminator, each with its own initialisation — and must

* define ``forward(x, return_features=False)`` returning the logits ``[B]``, or ``(logits [B], features [B, F])``
  when ``return_features`` is true (features: the last hidden layer, used by feature matching);
* be a pure function of its parameters and buffers, because the K discriminators run as ONE vectorised module
  (``torch.func.functional_call`` + ``vmap``): no ``.item()`` or Python branching on tensor values, no in-place
  update of a tensor that is not one of its own parameters or buffers. Random layers (dropout) are fine: each
  discriminator gets its own draws. Layers that mix the batch (BatchNorm, minibatch discrimination) are allowed,
  but not with a gradient penalty (each output must depend on its own sample only).

Spectral normalisation (``discriminators.spectral_norm``) is applied by the ensemble to every ``nn.Conv2d`` and
``nn.Linear`` of the discriminator; a discriminator must not add torch's own spectral-norm parametrisation.
:func:`gan_bench.models.ensemble.DiscriminatorEnsemble.build` checks this interface and names what is missing.
"""
from __future__ import annotations

from gan_bench.registry import Registry

GENERATORS = Registry("model/generator", runtime=("z_dim", "out_shape"))
DISCRIMINATORS = Registry("model/discriminator", runtime=("in_shape",))
