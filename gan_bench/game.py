"""The GAN as a two-player game: the vector field (both players' gradients at a point) that every
optimizer in :mod:`gan_bench.optim` acts on.

One gradient evaluation reads: real batch and noise (``sample``) → fake = G(z) → K logits per batch
(one vectorised ensemble call) → per-D losses (``losses``) + regularisers → for D, the gradient of
Σ_k L_D^k (each D gets exactly its own loss's gradient: the Ds share no parameter) → for G, the K
generator losses l_k → aggregation (AVG/GMAN/HV as a loss, MGD on the K gradients) → gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn

from gan_bench import losses as L
from gan_bench.aggregation import Aggregation, batched_vjp_rows, per_loss_grads
from gan_bench.ensemble import DiscriminatorEnsemble
from gan_bench.errors import ConfigError
from gan_bench.regularizers import HistoricalAverage, InstanceNoise, gradient_penalty
from gan_bench.unrolled import unrolled_params

Grads = dict[str, list[torch.Tensor]]


@dataclass
class Sample:
    """The randomness of one stochastic gradient evaluation."""

    real: torch.Tensor
    z: torch.Tensor
    seed: int  # seeds the evaluation's own randomness (instance noise, penalty points)


class GANGame:
    players = ("G", "D")

    def __init__(self, G: nn.Module, D: DiscriminatorEnsemble, aggregation: Aggregation, data: Any, cfg: Any,
                 device: torch.device):
        self.G, self.D, self.agg, self.data, self.device = G, D, aggregation, data, device
        self.batch_size, self.z_dim = cfg.train.batch_size, cfg.model.z_dim
        self.d_loss_fn, self.g_loss_fn = L.get_loss(cfg.loss.name)
        self.real_label = cfg.loss.real_label
        reg = cfg.regularizer
        self.gp, self.gp_weight = reg.gp, reg.gp_weight
        self.noise = InstanceNoise(reg.instance_noise, reg.instance_noise_anneal) if reg.instance_noise > 0 else None
        self.fm, self.fm_only = reg.feature_matching, reg.feature_matching_only
        self.unroll_steps = reg.unroll.steps
        self.unroll_lr = reg.unroll.lr or cfg.optimizer.d.lr
        self.unroll_method, self.unroll_betas = reg.unroll.method, tuple(cfg.optimizer.d.betas)
        self.unroll_optimizer: torch.optim.Optimizer | None = None  # D's Adam, whose moments the unroll starts from
        self._params = {"G": list(G.parameters()) + list(aggregation.parameters()), "D": list(D.parameters())}
        self.hist = {}
        if reg.historical_averaging > 0:
            self.hist = {"G": HistoricalAverage(self._params["G"]), "D": HistoricalAverage(self._params["D"])}
        self.hist_weight = reg.historical_averaging
        self.iteration = 0
        self.noise_set: torch.Tensor | None = None  # the noise vectors of SVRE's finite sum
        self.noise_set_size = 0
        self.last: dict[str, torch.Tensor] = {}  # detached per-evaluation statistics for logging
        self.record = True  # compute the logging-only statistics (norms, accuracies); the loop sets it per iteration

    # -- the Game protocol ----------------------------------------------------------------------------------
    def params(self, name: str) -> list[torch.Tensor]:
        return self._params[name]

    def sample(self) -> Sample:
        B = self.batch_size
        if self.data.streaming:
            real = self.data.next_batch(self.device)
        else:
            idx = self.data.sample_indices(B)
            flip = torch.rand(B, device=self.device) < 0.5 if self.data.flip else None
            real = self.data.get(idx, flip)
        if self.noise_set is not None:
            z = self.noise_set[torch.randint(len(self.noise_set), (B,), device=self.device)]
        else:
            z = torch.randn(B, self.z_dim, device=self.device)
        return Sample(real, z, int(torch.randint(2**62, (1,)).item()))

    def grad(self, names: Sequence[str], sample: Sample) -> Grads:
        needs_rng = self.noise is not None or self.gp in ("wgan_gp", "dragan")
        if not needs_rng:
            return self._grad(names, sample)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(sample.seed)
            return self._grad(names, sample)

    @property
    def finite_sum_size(self) -> int:
        """Terms of the finite sum in the unit of ``grad_evals``: the minibatch evaluations of one full gradient."""
        return -(-len(self.data) // self.batch_size)

    def enable_finite_sum(self, noise_set_size: int) -> None:
        """SVRE's finite sum: the dataset paired with a set of noise vectors, drawn at each snapshot."""
        if self.data.streaming:
            raise ConfigError("optimizer.update=svre needs a finite sum held in memory: use dataset.in_memory=true")
        self.noise_set_size = noise_set_size or len(self.data)  # drawn by SVRE's first snapshot

    def resample_finite_sum(self) -> None:
        """Draw the n noise vectors of the finite sum (SVRE calls this at every snapshot)."""
        if self.noise_set_size:
            self.noise_set = torch.randn(self.noise_set_size, self.z_dim, device=self.device)

    def full_grad(self, names: Sequence[str]) -> Grads:
        """Mean gradient over the finite sum: data in order, example i paired with noise vector i mod n."""
        assert self.noise_set is not None, "enable_finite_sum() first"
        total: Grads | None = None
        n, N = len(self.noise_set), len(self.data)
        record, self.record = self.record, False  # no logging statistics for the full pass
        for i, start in enumerate(range(0, N, self.batch_size)):
            idx = torch.arange(start, min(start + self.batch_size, N), device=self.device)
            s = Sample(self.data.get(idx), self.noise_set[idx % n], seed=i)
            g = self.grad(names, s)
            w = len(idx) / N
            if total is None:
                total = {k: [w * t for t in v] for k, v in g.items()}
            else:
                for k in g:
                    for acc, t in zip(total[k], g[k]):
                        acc.add_(t, alpha=w)
        self.record = record
        return total  # type: ignore[return-value]

    # -- the field -------------------------------------------------------------------------------------------
    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.noise(x, self.iteration) if self.noise is not None else x

    def _grad(self, names: Sequence[str], s: Sample) -> Grads:
        out: Grads = {}
        need_g, need_d = "G" in names, "D" in names
        with torch.set_grad_enabled(need_g):  # D's step needs no graph through G
            fake = self.G(s.z)
        real_in = self._inputs(s.real)
        want_features = need_g and self.fm > 0
        real_logits = real_feat = None
        if need_d or want_features:  # G's own loss needs D(real) only for feature matching
            r = self.D(real_in, return_features=want_features)
            real_logits, real_feat = r if want_features else (r, None)
        fake_in = self._inputs(fake if need_g else fake.detach())
        shared = need_g and self.unroll_steps == 0
        # MGD: each D gets its own view of the fakes, so that one backward gives every d l_k / d x apart
        fake_k = self.D.member_views(fake_in) if shared and self.agg.needs_grads else None
        fake_logits = fake_feat = None
        if need_d or shared:
            x = fake_k if fake_k is not None else fake_in if shared else fake_in.detach()
            f = self.D(x, return_features=want_features and shared, per_member=fake_k is not None)
            fake_logits, fake_feat = f if (want_features and shared) else (f, None)
        if need_d:
            d_losses = self.d_loss_fn(real_logits, fake_logits, self.real_label)
            total = d_losses
            if self.gp != "none":
                pen = gradient_penalty(self.D, real_in, fake_in.detach(), self.gp)
                total = total + (self.gp_weight / 2 if self.gp == "r1" else self.gp_weight) * pen
                self.last["d/penalty"] = pen.detach()
            loss = total.sum()
            if "D" in self.hist:
                loss = loss + self.hist_weight * self.hist["D"].penalty().sum()
            out["D"] = list(torch.autograd.grad(loss, self._params["D"], retain_graph=need_g))
            if self.record:  # per-discriminator gradient norms: the stacked parameters carry D_k in slice k
                self.last["grad_norm/D"] = torch.stack([g.detach().flatten(1).pow(2).sum(1) for g in out["D"]]).sum(0).sqrt()
            self.last["d/loss"] = d_losses.detach()
            if self.record:
                acc_r, acc_f = L.d_accuracy(real_logits.detach(), fake_logits.detach())
                self.last.update({"d/acc_real": acc_r, "d/acc_fake": acc_f})
        if need_g:
            out["G"] = self._g_grad(real_in, fake_in, real_logits, real_feat, fake_logits if shared else None, fake_feat,
                                    fake_k)
        return out

    def _g_grad(self, real_in, fake_in, real_logits, real_feat, fake_logits, fake_feat, fake_k=None) -> list[torch.Tensor]:
        want_features = self.fm > 0
        if fake_logits is None:  # unrolled: G's loss against D after k differentiable steps
            def d_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
                return self.d_loss_fn(self.D.functional(p, real_in.detach()), self.D.functional(p, fake_in),
                                      self.real_label).sum()

            d_params = self.D.param_dict()
            adam_state = None
            state = self.unroll_optimizer.state if self.unroll_optimizer is not None else None  # read now: resume
            if self.unroll_method == "adam" and state:  # replaces the optimizer's state dict
                adam_state = {n: state[p] for n, p in d_params.items() if p in state}
            params = unrolled_params(d_loss, d_params, self.unroll_steps, self.unroll_lr, method=self.unroll_method,
                                     betas=self.unroll_betas, adam_state=adam_state)
            f = self.D.functional(params, fake_in, return_features=want_features)
            fake_logits, fake_feat = f if want_features else (f, None)
        l_k = self.g_loss_fn(fake_logits)
        if want_features:  # Salimans et al.: ||E f(x) - E f(G(z))||^2 on D's last hidden layer, one term per D
            fm = (real_feat.detach().mean(1) - fake_feat.mean(1)).pow(2).sum(-1)
            l_k = self.fm * fm if self.fm_only else l_k + self.fm * fm
            self.last["g/feature_matching"] = fm.detach()
        self.last["g/l_k"] = l_k.detach()
        params = self._params["G"]
        if self.agg.needs_grads:
            g_params = list(self.G.parameters())
            if fake_k is not None:  # d l_k / d x from one backward through the Ds, then K batched VJPs through G
                (cot,) = torch.autograd.grad(l_k.sum(), fake_k)  # frees the Ds' graph; G's part is not traversed
                rows = batched_vjp_rows(fake_in, cot, g_params)  # [K, P]
            else:  # unrolled Ds: K batched backwards through the whole graph
                rows = per_loss_grads(l_k, g_params)
            direction, logs = self.agg.combine(rows)
            grads = list(torch.split(direction, [p.numel() for p in g_params]))
            grads = [g.view_as(p) for g, p in zip(grads, g_params)]
            if "G" in self.hist:
                extra = torch.autograd.grad(self.hist_weight * self.hist["G"].penalty(), g_params)
                grads = [g + e for g, e in zip(grads, extra)]
            grads += [torch.zeros_like(p) for p in params[len(g_params):]]
        else:
            loss, logs = self.agg.loss(l_k)
            if "G" in self.hist:
                loss = loss + self.hist_weight * self.hist["G"].penalty()
            grads = list(torch.autograd.grad(loss, params))
        self.last.update({f"agg/{k}": v.detach() for k, v in logs.items()})
        if self.record:
            self.last["grad_norm/G"] = torch.stack([g.detach().pow(2).sum() for g in grads]).sum().sqrt()
        return grads

    def after_step(self) -> None:
        """Called once per iteration, after the optimizer's step."""
        for h in self.hist.values():
            h.update()
        self.iteration += 1

    def state_dict(self) -> dict:
        return {"iteration": self.iteration, "noise_set": self.noise_set,
                "hist": {k: h.state_dict() for k, h in self.hist.items()}}

    def load_state_dict(self, sd: dict) -> None:
        self.iteration = sd["iteration"]
        ns = sd["noise_set"]
        self.noise_set = None if ns is None else ns.to(self.device)
        for k, h in self.hist.items():
            h.load_state_dict(sd["hist"][k])
