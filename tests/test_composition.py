"""Every loss x K x aggregation x optimizer composes and trains; the stabilisers plug into the real training step."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from conftest import DEVICE, compose
from gan_bench.run import Run
from gan_bench.train import train

pytestmark = pytest.mark.device

SMALL = ["dataset=ring8", "model=mlp", "model.generator.width=16", "model.discriminator.width=16", "model.z_dim=4",
         "dataset.n_points=256", "train.batch_size=32", "train.progress=off", "train.log_every=1",
         "train.sample_every=1000", "train.checkpoint_every=1000", "train.measure_flops=false", *DEVICE]


def _cases():
    for loss, k, agg, opt in itertools.product(["ns", "minimax", "ls", "hinge", "wasserstein"], [1, 3], ["avg", "hv"],
                                               ["adam", "extragradient"]):
        yield [f"loss={loss}", f"discriminators.count={k}", f"aggregation={agg}", f"optimizer={opt}"]


@pytest.mark.parametrize("overrides", list(_cases()), ids=lambda o: "-".join(v.split("=")[1] for v in o))
def test_loss_k_aggregation_optimizer_compose(tmp_path, overrides):
    out = train(compose(["train.iterations=3", *SMALL, *overrides]), tmp_path)
    assert out["iterations"] == 3
    assert all(math.isfinite(v) for v in out["final"].values())


@pytest.mark.parametrize("extra", [
    ["stabilizers.gradient_penalty.kind=wgan_gp", "loss=wasserstein"], ["stabilizers.gradient_penalty.kind=r1"],
    ["stabilizers.gradient_penalty.kind=dragan"], ["stabilizers=[gradient_penalty,instance_noise,unrolled]"],
    ["stabilizers.instance_noise.std=0.5", "stabilizers.instance_noise.anneal_iters=10"], ["loss.real_label=0.9"],
    ["stabilizers.feature_matching.weight=1.0"],
    ["stabilizers.feature_matching.weight=1.0", "stabilizers.feature_matching.only=true"],
    ["model.discriminator.minibatch_kernels=8"], ["stabilizers.historical_averaging.weight=0.01"],
    ["model.generator.norm=vbn"],
    ["stabilizers.unrolled.steps=3"], ["stabilizers.unrolled.steps=2", "stabilizers.unrolled.method=adam"],
    ["discriminators.spectral_norm=true"], ["discriminators/projection=random"],
    ["aggregation=mgd"], ["aggregation=mgd", "aggregation.normalize=true"], ["aggregation=gman"],
    ["aggregation=gman_auto"], ["optimizer=svre", "optimizer.rule.epoch_length=2"], ["optimizer=optimistic"],
    ["optimizer=lookahead", "optimizer.lookahead.k=2"], ["optimizer/rule=simultaneous"], ["train.n_dis=3"],
], ids=lambda o: "+".join(o))
def test_each_stabiliser_trains_with_three_discriminators(tmp_path, extra):
    out = train(compose(["train.iterations=3", "discriminators.count=3", *SMALL, *extra]), tmp_path)
    assert all(math.isfinite(v) for v in out["final"].values())


def _fp32(run: Run) -> Run:
    """On CUDA a Run turns TF32 on (a 10-bit mantissa: ~1e-4 relative); the tests that compare the step with a
    reference computed another way check the algorithm to fp32 accuracy, so they turn it off again."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return run


def _g_grads(overrides):
    torch.manual_seed(0)
    base = [o for o in SMALL if not o.startswith("dataset.n_points")] if "dataset=digits" in overrides else SMALL
    run = _fp32(Run(compose(["discriminators.count=2", *base, *overrides]), None))
    torch.manual_seed(1)
    s = run.game.sample()
    return run, s, run.game.grad(("G",), s)["G"]


def test_unroll_zero_equals_plain_and_unroll_changes_the_generator_gradient():
    _, _, plain = _g_grads([])
    _, _, zero = _g_grads(["stabilizers.unrolled.steps=0"])
    _, _, three = _g_grads(["stabilizers.unrolled.steps=3", "stabilizers.unrolled.lr=0.5"])
    for a, b in zip(plain, zero):
        assert torch.equal(a, b)
    assert any(not torch.allclose(a, b) for a, b in zip(plain, three))


def test_feature_matching_only_is_the_feature_distance_of_each_discriminator():
    run, s, grads = _g_grads(["stabilizers.feature_matching.weight=1.0", "stabilizers.feature_matching.only=true"])
    # reference: || mean_x f_k(x) - mean_z f_k(G(z)) ||^2 per discriminator, averaged (aggregation avg)
    fake = run.G(s.z)
    _, f_real = run.D(s.real, return_features=True)
    _, f_fake = run.D(fake, return_features=True)
    ref = (f_real.detach().mean(1) - f_fake.mean(1)).pow(2).sum(-1)
    torch.testing.assert_close(run.game.last["g/l_k"], ref.detach())
    ref_grads = torch.autograd.grad(ref.mean(), run.game.params("G"))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_label_smoothing_changes_only_the_discriminator_real_term():
    from gan_bench import losses as L

    r, f = torch.randn(2, 5), torch.randn(2, 5)
    smooth, plain = L.NonSaturating(0.9).d(r, f), L.NonSaturating(1.0).d(r, f)
    manual = (0.9 * torch.nn.functional.softplus(-r) + 0.1 * torch.nn.functional.softplus(r)).mean(-1) \
        + torch.nn.functional.softplus(f).mean(-1)
    torch.testing.assert_close(smooth, manual)
    # the fake part is untouched: the difference does not depend on the fake logits
    torch.testing.assert_close(L.NonSaturating(0.9).d(r, f + 3) - L.NonSaturating(1.0).d(r, f + 3), smooth - plain)
    assert not torch.allclose(smooth, plain)


IMAGES = ["dataset=digits", "dataset.resolution=8", "model=dcgan_small", "model.generator.width=8",
          "model.discriminator.width=8", "model.z_dim=8"]


@pytest.mark.parametrize("extra", [[], ["stabilizers.feature_matching.weight=0.5"], IMAGES,
                                   [*IMAGES, "stabilizers.feature_matching.weight=0.5", "discriminators.count=4"],
                                   [*IMAGES, "discriminators/projection=random",
                                    "stabilizers.historical_averaging.weight=0.1"]],
                         ids=["mlp", "mlp+fm", "dcgan", "dcgan+fm+k4", "dcgan+rp+hist"])
def test_mgd_direction_in_training_is_the_min_norm_point_of_the_per_d_gradients(extra):
    """The step gets d l_k / d x from one backward through the Ds and pulls the K cotangents back through G;
    the reference differentiates each l_k through the whole graph (K backward passes through D and G)."""
    from gan_bench.aggregation import min_norm_point, per_loss_grads

    run, s, grads = _g_grads(["aggregation=mgd", "discriminators.count=3", *extra])
    fake = run.G(s.z)
    logits, f_fake = run.D(fake, return_features=True)
    l_k = run.game.loss.g(logits)
    fm = run.cfg.stabilizers.feature_matching.weight
    if fm > 0:
        _, f_real = run.D(s.real, return_features=True)
        l_k = l_k + fm * (f_real.detach().mean(1) - f_fake.mean(1)).pow(2).sum(-1)
    torch.testing.assert_close(run.game.last["g/l_k"], l_k.detach())
    rows = per_loss_grads(l_k, list(run.G.parameters()))
    alpha = min_norm_point(rows @ rows.T)
    ref = alpha @ rows
    penalty = run.game.stab.penalty("G", run.game.log)
    if penalty is not None:  # historical averaging adds its own gradient to the MGD direction
        ref = ref + torch.cat([g.reshape(-1) for g in torch.autograd.grad(penalty, list(run.G.parameters()))])
    # on CUDA the two routes sum in different orders (seen with TF32 on: 1.2e-6 on one of 386 entries, an H200)
    tol = {"atol": 1e-6, "rtol": 1e-5} if ref.device.type == "cpu" else {"atol": 1e-5, "rtol": 1e-4}
    torch.testing.assert_close(torch.cat([g.reshape(-1) for g in grads]), ref, **tol)
    torch.testing.assert_close(run.game.last["agg/alpha"], alpha, atol=1e-5, rtol=1e-4)  # same Gram matrix
    assert (alpha >= 0).all()


def test_svre_redraws_the_noise_set_at_each_snapshot_and_mu_is_its_full_gradient():
    run = Run(compose([*SMALL, "optimizer=svre", "optimizer.rule.refresh=epoch", "optimizer.rule.epoch_length=2",
                       "optimizer.rule.noise_set=64"]), None)
    run.opt.step()  # snapshot 1
    svre = run.opt
    first = svre.finite_sum.noise.clone()
    mu = [m.clone() for m in svre.mu["G"]]
    moved = svre.save(tuple(run.game.players))
    svre.restore(svre.snapshot)  # mu is the full gradient at the snapshot, over the current noise set
    at_snapshot = svre.finite_sum.mean_grad(("G",))["G"]
    for a, b in zip(mu, at_snapshot):
        torch.testing.assert_close(a, b)
    svre.restore(moved)
    run.opt.step()
    assert torch.equal(svre.finite_sum.noise, first)  # same epoch
    run.opt.step()  # snapshot 2
    assert svre.finite_sum.noise.shape == (64, 4) and not torch.equal(svre.finite_sum.noise, first)
    # every stochastic sample of SVRE draws its noise vectors from the current noise set
    z = svre.draw().z
    assert all(any(torch.equal(v, u) for u in svre.finite_sum.noise) for v in z)


def test_logging_statistics_only_when_recorded():
    run = Run(compose([*SMALL, "discriminators.count=2"]), None)
    s = run.game.sample()
    run.game.record = False
    run.game.last.clear()
    run.game.grad(("G", "D"), s)
    assert "d/loss" in run.game.last and "g/l_k" in run.game.last
    assert not {"grad_norm/D", "grad_norm/G", "d/acc_real"} & set(run.game.last)
    run.game.record = True
    run.game.grad(("G", "D"), s)
    assert run.game.last["grad_norm/D"].shape == (2,) and run.game.last["grad_norm/G"] > 0


@pytest.mark.parametrize("k,solver", [(3, "exact"), (16, "interior_point")])
def test_mgd_auto_solver_is_exact_at_every_k(k, solver):
    """The training step's direction is the min-norm point of the per-D gradients to SLSQP's accuracy, at K beyond
    the face enumeration too; and the same in a simultaneous step, where D's gradient is computed alongside."""
    from scipy.optimize import minimize

    from gan_bench.aggregation import per_loss_grads

    for update in ("alternating", "simultaneous"):
        torch.manual_seed(0)
        run = _fp32(Run(compose([*SMALL, "aggregation=mgd", f"discriminators.count={k}", f"optimizer/rule={update}"]),
                        None))
        assert run.game.agg.solver == solver
        torch.manual_seed(1)
        s = run.game.sample()
        out = run.game.grad(("G", "D") if update == "simultaneous" else ("G",), s)
        direction = torch.cat([g.reshape(-1) for g in out["G"]]).double()
        rows = per_loss_grads(run.game.loss.g(run.D(run.G(s.z))), list(run.G.parameters())).double()
        q = (rows @ rows.T).cpu().numpy()
        q = q / q.diagonal().max()
        ref = minimize(lambda a, q=q: a @ q @ a, torch.full((k,), 1.0 / k).numpy(), jac=lambda a, q=q: 2 * q @ a,
                       method="SLSQP", bounds=[(0, None)] * k,
                       constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1}],
                       options={"ftol": 1e-16, "maxiter": 1000}).x
        scale = rows.norm(dim=1).max()
        # fp32 rows: on CUDA the Gram matrix sums in another order than on the CPU, hence a relative slack there
        got, best = float((direction.norm() / scale) ** 2), float(ref @ q @ ref)
        slack = 1e-9 if direction.device.type == "cpu" else 1e-5 * best
        assert got <= best + slack, f"|direction|^2 {got:.10g} > SLSQP's {best:.10g} (+{slack:.1g})"
        alpha = run.game.last["agg/alpha"].double()
        torch.testing.assert_close(direction, alpha @ rows, atol=1e-6 * scale.item(), rtol=0)
        if update == "simultaneous":
            ref_d = torch.autograd.grad(run.game.loss.d(run.D(s.real), run.D(run.G(s.z).detach())).sum(),
                                        run.game.params("D"))
            for a, b in zip(out["D"], ref_d):
                torch.testing.assert_close(a, b)
