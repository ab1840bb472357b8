"""The GAN as a two-player game: the vector field (both players' gradients at a point) that every optimizer in
:mod:`gan_bench.optim` acts on.

One gradient evaluation, :meth:`GANGame.grad`, reads as three phases:

1. ``forward``: G(z), the inputs the discriminators see (the stabilisers' input transforms: instance noise), and ONE
   vectorised call of the K discriminators on the real batch and one on the fakes (for MGD, each D gets its own view
   of the fakes);
2. ``d_phase``: the K discriminator losses, plus the D terms (gradient penalties, ``[K]``) and D's parameter penalty
   (historical averaging) → the gradient of their sum (each D gets exactly its own loss's gradient: the Ds share no
   parameter);
3. ``g_phase``: the K generator losses l_k (against the G-phase discriminator if a stabiliser gives one: unrolled Ds),
   the G terms (feature matching), then the aggregation turns them, with G's parameter penalty, into G's gradient
   (AVG/GMAN/HV as a loss, MGD on the K gradients).

The stabilisers are the registered classes of :mod:`gan_bench.stabilizers` (one file each); each phase hands their
hooks a narrow context (:mod:`gan_bench.stabilizers.base`), never the game.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from gan_bench import distributed
from gan_bench.aggregation import Aggregation, GeneratorRoute
from gan_bench.errors import ConfigError
from gan_bench.losses import GANLoss, d_accuracy
from gan_bench.models.ensemble import DiscriminatorEnsemble
from gan_bench.optim.protocol import FiniteSum, FiniteSumGame, Grads
from gan_bench.stabilizers import DTermContext, GPhaseContext, GTermContext, InputContext, Stabilizers
from gan_bench.stabilizers.base import DOut


@dataclass
class Sample:
    """The randomness of one stochastic gradient evaluation."""

    real: Tensor
    z: Tensor
    seed: int  # seeds the evaluation's own randomness (instance noise, penalty points, dropout)


@dataclass
class Forward:
    """What both phases share: the batches as the discriminators see them and the discriminators' outputs."""

    real: Tensor  # the real batch after input transforms
    fake: Tensor  # G(z) after input transforms; carries G's graph when G moves
    views: Tensor | None  # per-discriminator views of ``fake`` [K, B, ...] (aggregations on per-D gradients)
    real_out: DOut | None
    fake_out: DOut | None  # computed with G's graph when G moves (and no stabiliser gives the G-phase discriminator)


def seed_step(device: torch.device, seed: int) -> None:
    """``torch.manual_seed(seed)``, for a step's draws on ``device``. On the CPU only the CPU generator is seeded (the
    same stream): ``torch.manual_seed`` also queues a lazy seeding of each accelerator backend, with a stack trace
    each, about 1 ms a call: 1 % of a small model's CPU step, paid twice an iteration."""
    if device.type == "cpu":
        torch.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)


class GANGame(FiniteSumGame):
    players = ("G", "D")

    def __init__(self, G: nn.Module, D: DiscriminatorEnsemble, loss: GANLoss, aggregation: Aggregation,
                 stabilizers: Stabilizers, data: Any, batch_size: int, z_dim: int, device: torch.device):
        self.G, self.D, self.loss, self.agg, self.stab = G, D, loss, aggregation, stabilizers
        self.data, self.batch_size, self.z_dim, self.device = data, batch_size, z_dim, device
        self._params = {"G": list(G.parameters()) + list(aggregation.parameters()), "D": list(D.parameters())}
        self.iteration = 0
        self.last: dict[str, Tensor] = {}  # detached per-evaluation statistics for logging
        self.record = True  # compute the logging-only statistics (norms, accuracies); the loop sets it per iteration
        self.health = torch.ones((), dtype=torch.bool, device=device)  # all losses and gradients finite so far
        self.peak_loss = torch.zeros((), device=device)  # the largest |per-D loss| since the last health check

    # -- the Game protocol ----------------------------------------------------------------------------------------
    def params(self, name: str) -> list[Tensor]:
        return self._params[name]

    def sample(self) -> Sample:
        """The global batch's random draws, as one process would make them; this rank keeps its slice."""
        B, part = self.batch_size, distributed.my_slice(self.batch_size)
        if self.data.streaming:
            real = self.data.next_batch(self.device)[part]
        else:
            idx = self.data.sample_indices(B)
            flip = torch.rand(B, device=self.device) < 0.5 if self.data.flip else None
            real = self.data.get(idx[part], None if flip is None else flip[part])
        z = torch.randn(B, self.z_dim, device=self.device)[part]
        return Sample(real, z, int(torch.randint(2**62, (1,)).item()))

    def grad(self, names: Sequence[str], sample: Sample) -> Grads:
        """Both players' gradients at the current point on ``sample`` (its own seeded randomness)."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            seed_step(self.device, sample.seed)
            f = self.forward(sample, "G" in names, "D" in names)
            out: Grads = {}
            if "D" in names:
                out["D"] = self.d_phase(f, keep_graph="G" in names)
            if "G" in names:
                out["G"] = self.g_phase(f)
        for grads in out.values():  # data-parallel: every update rule receives the global gradient
            distributed.mean_(grads)
        return out

    # -- the phases -----------------------------------------------------------------------------------------------
    def log(self, key: str, value: Tensor) -> None:
        """The stabilisers' logging sink: a detached statistic of this evaluation."""
        self.last[key] = value.detach()

    def inputs(self, x: Tensor) -> Tensor:
        """A batch as the discriminators see it (the stabilisers' input transforms)."""
        for s in self.stab.transforms:
            x = s.transform(x, InputContext(self.iteration, self.log))
        return x

    def forward(self, s: Sample, need_g: bool, need_d: bool) -> Forward:
        with torch.set_grad_enabled(need_g):  # D's step needs no graph through G
            fake = self.G(s.z)
        real = self.inputs(s.real)
        features = need_g and self.stab.needs_features
        real_out = DOut.of(self.D(real, return_features=features)) if need_d or features else None
        fake = self.inputs(fake if need_g else fake.detach())
        shared = need_g and self.stab.g_discriminator is None  # G's loss uses this very forward
        views = self.D.member_views(fake) if shared and self.agg.per_member_inputs else None
        fake_out = None
        if need_d or shared:
            x = views if views is not None else fake if shared else fake.detach()
            fake_out = DOut.of(self.D(x, return_features=features and shared, per_member=views is not None))
        return Forward(real, fake, views, real_out, fake_out)

    def d_phase(self, f: Forward, keep_graph: bool) -> list[Tensor]:
        losses = self.loss.d(f.real_out.logits, f.fake_out.logits)
        total = losses
        if self.stab.has_d_terms:  # gradient penalties, one value per discriminator
            ctx = DTermContext(self.D, f.real, f.fake.detach(), f.real_out, f.fake_out, self.loss, self.log)
            total = self.stab.d_terms(losses, ctx)
        loss = total.sum()
        penalty = self.stab.penalty("D", self.log)  # historical averaging
        if penalty is not None:
            loss = loss + penalty
        grads = list(torch.autograd.grad(loss, self._params["D"], retain_graph=keep_graph))
        self.watch(loss, grads, total)
        self.last["d/loss"] = distributed.mean(losses) if self.record else losses.detach()
        if self.record:  # per-discriminator gradient norms (float64: no overflow): D_k's parameters are slice k
            self.last["grad_norm/D"] = torch.stack([g.detach().flatten(1).double().pow(2).sum(1)
                                                    for g in grads]).sum(0).sqrt()
            acc_r, acc_f = d_accuracy(f.real_out.logits.detach(), f.fake_out.logits.detach())
            self.last.update({"d/acc_real": acc_r, "d/acc_fake": acc_f})
        return grads

    def g_phase(self, f: Forward) -> list[Tensor]:
        fake_out = f.fake_out
        if self.stab.g_discriminator is not None:  # unrolled discriminators
            ctx = GPhaseContext(self.D, self.loss, f.real.detach(), f.fake, self.stab.needs_features, self.log)
            fake_out = self.stab.g_discriminator.g_discriminator(ctx)
        losses = self.loss.g(fake_out.logits)
        if self.stab.has_g_terms:  # feature matching
            losses = self.stab.g_terms(losses, GTermContext(f.real_out, fake_out, self.loss, self.log))
        self.last["g/l_k"] = distributed.mean(losses) if self.record else losses.detach()
        penalty = self.stab.penalty("G", self.log)  # historical averaging
        route = GeneratorRoute(f.fake, f.views, list(self.G.parameters()), batched=self.D.active_layout == "vmap")
        grads, logs = self.agg.generator_grads(losses, self._params["G"], penalty, route)
        self.watch(losses.sum(), grads, losses)
        self.last.update({f"agg/{k}": v.detach() for k, v in logs.items()})
        if self.record:  # float64: the norm of finite float32 gradients never overflows
            self.last["grad_norm/G"] = torch.stack([g.detach().double().pow(2).sum() for g in grads]).sum().sqrt()
        return grads

    def watch(self, loss: Tensor, grads: list[Tensor], per_d: Tensor) -> None:
        """AND the health flag with the finiteness of a loss and its gradients, and keep the largest |loss| of a
        discriminator's (``per_d``, [K]), on the device (no host sync)."""
        total = loss.detach() + torch.stack([g.detach().sum() for g in grads]).sum()
        self.health = self.health & torch.isfinite(total)
        self.peak_loss = torch.maximum(self.peak_loss, per_d.detach().abs().max().float())

    def after_step(self) -> None:
        """Called once per iteration, after the optimizer's step."""
        self.stab.after_step()
        self.iteration += 1

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """No logging-only statistics inside the block (e.g. SVRE's full passes)."""
        record, self.record = self.record, False
        try:
            yield
        finally:
            self.record = record

    # -- SVRE's finite sum ------------------------------------------------------------------------------------------
    @property
    def finite_sum_size(self) -> int:
        if self.data.streaming:
            raise ConfigError("optimizer/rule=svre needs a finite sum held in memory: use dataset.in_memory=true")
        return -(-len(self.data) // self.batch_size)

    def finite_sum(self, noise_set: int = 0) -> "DataNoiseSum":
        return DataNoiseSum(self, torch.randn(noise_set or len(self.data), self.z_dim, device=self.device))

    def restore_finite_sum(self, state: dict) -> "DataNoiseSum":
        return DataNoiseSum(self, state["noise"].to(self.device))

    # -- state ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"iteration": self.iteration, "stabilizers": self.stab.state_dict()}

    def load_state_dict(self, sd: dict) -> None:
        self.iteration = sd["iteration"]
        if "stabilizers" in sd:
            self.stab.load_state_dict(sd["stabilizers"])
        elif sd.get("penalties"):  # earlier checkpoints: historical averaging's running means, by player
            self.stab.load_state_dict({"historical_averaging": sd["penalties"]})


class DataNoiseSum(FiniteSum):
    """The GAN's finite sum at one SVRE snapshot: the in-memory dataset in order, example i paired with noise vector
    i mod n of a noise set drawn at the snapshot (Chavdarova et al. 2019's finite sum over data and noise)."""

    def __init__(self, game: GANGame, noise: Tensor):
        self.game, self.noise = game, noise

    def sample(self) -> Sample:
        """A stochastic term of the sum: a minibatch of examples and, independently, of the noise set's vectors."""
        game, B = self.game, self.game.batch_size
        part = distributed.my_slice(B)
        idx = game.data.sample_indices(B)
        flip = torch.rand(B, device=game.device) < 0.5 if game.data.flip else None
        z = self.noise[torch.randint(len(self.noise), (B,), device=game.device)]
        real = game.data.get(idx[part], None if flip is None else flip[part])
        return Sample(real, z[part], int(torch.randint(2**62, (1,)).item()))

    def mean_grad(self, names: Sequence[str]) -> Grads:
        game, n, N = self.game, len(self.noise), len(self.game.data)
        total: Grads | None = None
        with game.quiet():
            for i, start in enumerate(range(0, N, game.batch_size)):
                idx = torch.arange(start, min(start + game.batch_size, N), device=game.device)
                w = len(idx) / N
                idx = idx[distributed.my_slice(len(idx))]  # the ranks share each minibatch
                g = game.grad(names, Sample(game.data.get(idx), self.noise[idx % n], seed=i))
                if total is None:
                    total = {k: [w * t for t in v] for k, v in g.items()}
                else:
                    for k in g:
                        for acc, t in zip(total[k], g[k]):
                            acc.add_(t, alpha=w)
        return total  # type: ignore[return-value]

    def state_dict(self) -> dict:
        return {"noise": self.noise}
