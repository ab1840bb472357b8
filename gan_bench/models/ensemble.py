"""K discriminators as ONE module over stacked parameters (torch.func.stack_module_state + functional_call).

Every discriminator keeps its own initialisation, parameters and (since Adam and SGD act element-wise
on the stacked tensors) its own optimizer state; the training step never loops over discriminators.
Spectral normalisation (Miyato et al. 2018, :mod:`gan_bench.models.spectral_norm`) is applied in batched form to
the stacked weights, with one power-iteration vector per discriminator and layer. What a discriminator class must
provide is documented in :mod:`gan_bench.models.base`; :meth:`DiscriminatorEnsemble.build` checks it and names what
is missing.

How the K members are evaluated from the stacked parameters is the ensemble's ``layout`` (:data:`LAYOUTS`). It
changes neither the parameters, their optimizer state nor the checkpoint format, only the forward's evaluation:

* ``"vmap"``: one ``vmap`` call over the K members (the K convolutions become one grouped convolution). Random
  layers (dropout) draw independently for each discriminator (``vmap(randomness="different")``: one batched draw).
* ``"loop"``: one call of the template per member on its slices ``p[k]`` (views of the stacked tensors; see
  :class:`~gan_bench.models.member_call.MemberCall`), outputs stacked; on the CPU image batches go to the members
  channels-last (:meth:`DiscriminatorEnsemble._loop_inputs`). The arithmetic is that of K separate modules: on the
  CPU, outputs and parameter gradients are bit-identical to theirs (fed the same NHWC batch). Random layers draw
  member after member from the global generator (member k's layers in order, then member k + 1's), exactly as K
  separate modules called in turn: independent masks per member, as with vmap, but not vmap's numbers (vmap draws
  one [K, ...] tensor at once). Deterministic given the RNG state, so resume stays bit-exact.
* ``"auto"`` (default): :func:`resolve_layout` picks by the device the parameters are on: ``loop`` on the CPU,
  where mkldnn's grouped-convolution backward makes vmap slower than a loop over K modules (measured with
  ``scripts/bench_multid.py``), ``vmap`` on CUDA and other accelerators. Discriminators without convolutions and with
  many parameters are the exception on the CPU: vmap's batched matmuls write the K gradients straight into stacked
  tensors, where the loop stacks K slices (the MNIST MLPs, 1.2 M parameters each, K = 24 on 2 threads: vmap about
  10 % faster than K separate modules, the loop about 10 % slower); ``discriminators.layout=vmap`` there.

The game hands the active layout on to MGD's K generator gradients (:class:`~gan_bench.aggregation.GeneratorRoute`
``batched``): one vmapped backward pass through G with vmap, K passes one after another with the loop.

The layouts differ by float rounding only (with dropout, also by which random numbers are drawn: as between the
CPU and CUDA generators anyway). :meth:`DiscriminatorEnsemble.check_interface` probes every class under vmap
whatever the layout, so a class that could only run in the loop is rejected on the CPU as it would be on a GPU.
"""
from __future__ import annotations

import copy
import inspect
from typing import Callable, Sequence

import torch
import torch.nn as nn
from torch.func import functional_call, stack_module_state, vmap

from gan_bench.errors import ConfigError
from gan_bench.models import spectral_norm as sn
from gan_bench.models.member_call import MemberCall
from gan_bench.registry import choice

LAYOUTS = ("auto", "vmap", "loop")
Layout = choice("EnsembleLayout", LAYOUTS)  # the values of discriminators.layout


def _key(name: str) -> str:
    return name.replace(".", "__")


def resolve_layout(layout: str, device: torch.device) -> str:
    """The evaluation strategy ``layout`` stands for on ``device``: ``"auto"`` is ``"loop"`` on the CPU (K plain
    convolutions beat vmap's grouped ones there, forward and backward, at every K measured) and ``"vmap"`` elsewhere
    (CUDA: one launch per layer for all K); ``"vmap"`` and ``"loop"`` stand for themselves."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout != "auto":
        return layout
    return "loop" if torch.device(device).type == "cpu" else "vmap"


def _meta_template(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with meta tensors for its parameters and buffers (a stateless template) in which tied
    parameters stay tied: ``.to("meta")`` gives each alias its own tensor, which functional_call would then leave
    a meta tensor and read as garbage."""
    memo: dict[int, object] = {}
    for p in module.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in module.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(module, memo)


def _stack_outputs(outs: list) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """K members' outputs (tensors, or tuples of tensors such as (logits, features)) stacked on a new dim 0."""
    if len(outs) == 1:  # K = 1: a view, no copy
        return tuple(t.unsqueeze(0) for t in outs[0]) if isinstance(outs[0], tuple) else outs[0].unsqueeze(0)
    if isinstance(outs[0], tuple):
        return tuple(torch.stack(parts) for parts in zip(*outs))
    return torch.stack(outs)


class DiscriminatorEnsemble(nn.Module):
    """``d(x) -> logits [K, B]`` for K discriminators on the same batch x [B, ...].

    ``d(x_k, per_member=True)`` takes one batch per discriminator, x_k [K, B, ...] (D_k sees x_k[k]). With
    x_k = x.expand(K, ...), the gradient of ``logits.sum()`` w.r.t. x_k holds ∇_x of each D_k's own term in
    slice k: K input-gradients from ONE backward pass, where a shared x would need K backward passes
    (each through all K discriminators) to keep them apart.
    """

    def __init__(self, modules: Sequence[nn.Module], spectral_norm: bool = False, layout: str = "auto"):
        super().__init__()
        if len(modules) < 1:
            raise ValueError("an ensemble needs at least one discriminator")
        resolve_layout(layout, torch.device("cpu"))  # a ValueError for an unknown layout
        self.layout = layout  # how forward evaluates the members (not state: the checkpoint does not depend on it)
        params, buffers = stack_module_state(list(modules))
        self.count = len(modules)
        self.param_names = list(params)
        self._keys = [_key(n) for n in self.param_names]
        self.buffer_names = list(buffers)
        self.loop_channels_last = True  # the loop layout hands image batches to the members in NHWC on the CPU
        self.stacked = nn.ParameterDict({_key(n): nn.Parameter(p.detach().clone()) for n, p in params.items()})
        for n, b in buffers.items():
            self.register_buffer("buf__" + _key(n), b.clone())
        base = _meta_template(modules[0])
        self._base = [base]  # a list keeps the stateless template out of state_dict()
        self._member_call = [MemberCall(base)]  # the loop layout's calls of the template
        self.sn_names: list[str] = []  # the weights spectral norm divides (:mod:`~gan_bench.models.spectral_norm`)
        if spectral_norm:
            for name, u in sn.power_vectors(modules[0], params).items():
                self.register_buffer("sn_u__" + _key(name), u)
                self.sn_names.append(name)

    @classmethod
    def build(cls, make: Callable[[], nn.Module], count: int, spectral_norm: bool = False,
              in_shape: tuple[int, ...] | None = None, layout: str = "auto") -> "DiscriminatorEnsemble":
        """K discriminators from ``make()`` (each its own initialisation); with ``in_shape``, the interface of
        :mod:`gan_bench.models.base` is checked on a probe batch and a violation is a ConfigError naming it."""
        if count < 1:
            raise ConfigError(f"discriminators.count={count} is impossible: at least 1 discriminator is needed")
        modules = [make() for _ in range(count)]
        _check_forward_signature(modules[0])
        ensemble = cls(modules, spectral_norm=spectral_norm, layout=layout)
        if in_shape is not None:
            ensemble.check_interface(in_shape)
        return ensemble

    def train(self, mode: bool = True) -> "DiscriminatorEnsemble":
        """Also switches the stateless template (held outside the module tree), so that its random layers (dropout)
        stop drawing in eval mode."""
        super().train(mode)
        self._base[0].train(mode)
        return self

    @property
    def device(self) -> torch.device:
        tensors = self.stacked._parameters or self._buffers  # the module's own tables: no per-call lookups
        return next(iter(tensors.values())).device if tensors else torch.device("cpu")

    @property
    def active_layout(self) -> str:
        """``"vmap"`` or ``"loop"``: how forward evaluates the members now (``layout`` resolved on the device)."""
        return resolve_layout(self.layout, self.device)

    def check_interface(self, in_shape: tuple[int, ...]) -> None:
        """Run a 2-sample probe through the ensemble in training mode (so that in-place buffer updates show), under
        vmap (the contract on every device) and in the loop layout, and check the shapes of the logits and features;
        buffers and the global RNG are left as they were."""
        name = type(self._base[0]).__name__
        device = self.device
        buffers = {k: b.clone() for k, b in self.named_buffers()}
        probe = torch.zeros(2, *in_shape, device=device)
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                logits, features = self(probe, return_features=True, layout="vmap")
                looped = self._probe_loop(probe)  # also under another layout: it may change (on resume, say)
                if self.active_layout == "loop":
                    logits, features = looped
        except Exception as err:  # a user class can fail under vmap in many ways: name the likely causes
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            raise ConfigError(f"discriminator {name} cannot run as a vectorised ensemble ({type(err).__name__}: "
                              f"{first}); it must be a pure function of its parameters and buffers: no .item() or "
                              "Python branching on tensor values, no in-place update of other tensors") from None
        finally:
            with torch.no_grad():
                for k, b in self.named_buffers():
                    b.copy_(buffers[k])
        if tuple(logits.shape) != (self.count, 2):
            raise ConfigError(f"discriminator {name} must return one logit per sample, shape [B]; for a batch of 2 it "
                              f"returned shape {tuple(logits.shape[1:])}")
        if features.dim() != 3 or features.shape[1] != 2:
            raise ConfigError(f"discriminator {name} with return_features=True must return (logits [B], features "
                              f"[B, F]); for a batch of 2 its features have shape {tuple(features.shape[1:])}")

    def _probe_loop(self, probe: torch.Tensor):
        """The loop layout on the probe; a class that fails on channels-last image batches (``.view`` of an NHWC
        activation, say) gets them in the default layout instead (``loop_channels_last = False``)."""
        try:
            return self(probe, return_features=True, layout="loop")
        except Exception:
            if not (self.loop_channels_last and probe.dim() == 4):
                raise
        self.loop_channels_last = False
        return self(probe, return_features=True, layout="loop")

    # -- parameters as a dict keyed by the single discriminator's parameter names ------------------------------
    def param_dict(self) -> dict[str, torch.Tensor]:
        table = self.stacked._parameters  # what ParameterDict's item access reads, without its per-item lookups
        return {n: table[k] for n, k in zip(self.param_names, self._keys)}

    def buffer_dict(self) -> dict[str, torch.Tensor]:
        return {n: self._buffers["buf__" + _key(n)] for n in self.buffer_names}

    def _spectral(self, params: dict[str, torch.Tensor], update: bool) -> dict[str, torch.Tensor]:
        """``params`` spectrally normalised (when switched on); ``update`` advances the power-iteration vectors."""
        vectors = {name: self._buffers["sn_u__" + _key(name)] for name in self.sn_names}
        return sn.normalize(params, vectors, update)

    def member_views(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, ...]`` as one view per discriminator, ``[K, B, ...]`` (an expand, no copy), for
        ``per_member=True``."""
        return x.unsqueeze(0).expand(self.count, *x.shape)

    def functional(self, params: dict[str, torch.Tensor], x: torch.Tensor, return_features: bool = False,
                   per_member: bool = False):
        """Pure form for given stacked parameters (e.g. unrolled ones); spectral-norm vectors are not updated."""
        return self(x, return_features=return_features, params=params, per_member=per_member)

    def forward(self, x: torch.Tensor, return_features: bool = False, params: dict[str, torch.Tensor] | None = None,
                per_member: bool = False, layout: str | None = None):
        """Logits ``[K, B]`` (and features ``[K, B, F]``); ``layout`` overrides ``self.layout`` for this call."""
        if per_member and (x.dim() < 2 or x.shape[0] != self.count):
            raise ValueError(f"per_member=True needs one batch per discriminator, x of shape [{self.count}, B, ...]; "
                             f"got {tuple(x.shape)}")
        own = params is None
        p = self.param_dict() if own else params
        weights = self._spectral(p, update=self.training and own)
        how = resolve_layout(self.layout if layout is None else layout, self.device)
        evaluate = self._loop if how == "loop" else self._vmap
        return evaluate(weights, self.buffer_dict(), x, return_features, per_member)

    def _vmap(self, weights: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
              return_features: bool, per_member: bool):
        """All K members in one vmap call; random layers draw one batched tensor (``randomness="different"``)."""
        base = self._base[0]

        def one(pp, b, inp):
            return functional_call(base, (pp, b), (inp,), {"return_features": return_features})

        return vmap(one, in_dims=(0, 0, 0 if per_member else None), randomness="different")(weights, buffers, x)

    def _loop(self, weights: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
              return_features: bool, per_member: bool):
        """Member after member on its slices of the stacked tensors (:class:`MemberCall`: functional_call without
        its per-call overhead). ``unbind`` makes the K slices of a tensor with ONE autograd node, whose backward
        stacks the K slice gradients (indexing p[k] K times would instead add K zero-padded full-size gradients)."""
        tensors = {**weights, **buffers}
        names = list(tensors)
        if self.count == 1:  # a view: its backward is a view of the gradient too (unbind's would copy it)
            slices = [tuple(t.squeeze(0) for t in tensors.values())]
        else:
            slices = zip(*(t.unbind(0) for t in tensors.values())) if tensors else [()] * self.count
        members = [dict(zip(names, parts)) for parts in slices]
        call = self._member_call[0]
        xs = self._loop_inputs(x, per_member)
        return _stack_outputs([call(m, xk, return_features=return_features) for m, xk in zip(members, xs)])

    def _loop_inputs(self, x: torch.Tensor, per_member: bool) -> list[torch.Tensor]:
        """The members' inputs in the loop layout: ``x`` for each, or its K slices. Image batches ``[B, C, H, W]`` on
        the CPU are made channels-last (NHWC; a shared batch once): mkldnn convolves those without reordering its
        input and output to and from its blocked format at every call (``scripts/bench_multid.py``: 3 % faster
        training steps at K = 8, 10 % at K = 24, where the reorders' buffers also page-faulted every iteration).
        The values are the same; the arithmetic is K separate modules' on NHWC batches."""
        xs = list(x.unbind(0)) if per_member else [x]
        if self.loop_channels_last and xs[0].dim() == 4 and xs[0].device.type == "cpu":
            xs = [t.contiguous(memory_format=torch.channels_last) for t in xs]
        return xs if per_member else xs * self.count

    def unstack(self, k: int, template: nn.Module) -> nn.Module:
        """The k-th discriminator as a plain module (spectral norm folded into its weights)."""
        m = copy.deepcopy(template)
        with torch.no_grad():
            weights = self._spectral(self.param_dict(), update=False)
            state = {n: t[k] for n, t in weights.items()}
            state.update({n: t[k] for n, t in self.buffer_dict().items()})
            m.load_state_dict(state)
        return m


def _check_forward_signature(module: nn.Module) -> None:
    params = inspect.signature(module.forward).parameters
    if "return_features" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise ConfigError(f"discriminator {type(module).__name__} must define forward(x, return_features=False) "
                          "returning logits [B], or (logits [B], features [B, F]) when return_features is true")
