"""The ensemble equals K separate nn.Modules run in a loop: outputs and gradients, in each layout (vmap, loop)."""
from __future__ import annotations

import copy

import pytest
import torch

from gan_bench.models import dcgan, mlp
from gan_bench.models.ensemble import DiscriminatorEnsemble
from gan_bench.models.projection import Projected, RandomProjection

LAYOUTS = ["vmap", "loop"]


def _make(kind: str):
    if kind == "dcgan":
        return lambda: dcgan.Discriminator((1, 16, 16), width=8)
    if kind == "dcgan_mbd":
        return lambda: dcgan.Discriminator((3, 8, 8), width=8, minibatch_kernels=4, minibatch_kernel_dim=3)
    if kind == "dcgan_rp":
        return lambda: Projected(RandomProjection((1, 16, 16)), dcgan.Discriminator((1, 16, 16), width=8))
    return lambda: mlp.Discriminator((2,), width=16, depth=2)


def _input(kind: str, b: int = 6) -> torch.Tensor:
    if kind.startswith("dcgan"):
        return torch.randn(b, 3 if kind == "dcgan_mbd" else 1, 8 if kind == "dcgan_mbd" else 16,
                           8 if kind == "dcgan_mbd" else 16)
    return torch.randn(b, 2)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["dcgan", "mlp", "dcgan_mbd", "dcgan_rp"])
@pytest.mark.parametrize("k", [1, 3])
def test_outputs_and_gradients_equal_a_loop(kind, k, layout):
    torch.manual_seed(k)
    modules = [_make(kind)() for _ in range(k)]
    ref = [copy.deepcopy(m) for m in modules]
    ens = DiscriminatorEnsemble(modules, layout=layout)
    x = _input(kind).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    out, feats = ens(x, return_features=True)
    ref_out = [m(x_ref, return_features=True) for m in ref]
    assert out.shape == (k, x.shape[0])
    torch.testing.assert_close(out, torch.stack([o for o, _ in ref_out]), atol=1e-5, rtol=0)
    torch.testing.assert_close(feats, torch.stack([f for _, f in ref_out]), atol=1e-5, rtol=0)
    # a loss that mixes the discriminators differently, so a wrong gradient routing would show
    w = torch.arange(1, k + 1, dtype=torch.float32)
    (torch.sigmoid(out).mean(1) * w).sum().backward()
    (torch.stack([torch.sigmoid(o).mean() for o, _ in ref_out]) * w).sum().backward()
    for name, p in ens.param_dict().items():
        ref_grads = torch.stack([dict(m.named_parameters())[name].grad for m in ref])
        torch.testing.assert_close(p.grad, ref_grads, atol=1e-5, rtol=0)
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=0)


def test_discriminators_are_independent_and_differently_initialised():
    torch.manual_seed(0)
    ens = DiscriminatorEnsemble.build(_make("dcgan"), 3)
    w = ens.param_dict()["head.weight"]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    x = torch.randn(4, 1, 16, 16)
    out = ens(x)
    g = torch.autograd.grad(out[1].sum(), list(ens.parameters()))
    for t in g:  # the loss of D_1 only touches D_1's slice
        assert t[0].abs().sum() == 0 and t[2].abs().sum() == 0 and t[1].abs().sum() > 0


def test_random_projections_differ_per_discriminator():
    torch.manual_seed(0)
    ens = DiscriminatorEnsemble.build(_make("dcgan_rp"), 2)
    proj = ens.buffer_dict()["projection.weight"]
    assert proj.shape[0] == 2 and not torch.equal(proj[0], proj[1])
    assert all(not p.requires_grad for p in ens.buffer_dict().values())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_spectral_norm_matches_torch_parametrization(layout):
    """Batched spectral norm and torch.nn.utils.parametrizations.spectral_norm on each D converge to the same
    normalised discriminators (both divide by the largest singular value, found by power iteration)."""
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    modules = [_make("dcgan")() for _ in range(3)]
    ens = DiscriminatorEnsemble(copy.deepcopy(modules), spectral_norm=True, layout=layout).train()
    refs = []
    for m in modules:
        m = copy.deepcopy(m)
        for name in ens.sn_names:
            spectral_norm(m.get_submodule(name.rsplit(".", 1)[0]), n_power_iterations=1, eps=1e-12)
        refs.append(m.train())
    x = torch.randn(5, 1, 16, 16)
    for _ in range(60):
        out = ens(x)
        ref = torch.stack([m(x) for m in refs])
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    plain = DiscriminatorEnsemble(copy.deepcopy(modules))(x)
    assert (plain - out).abs().max() > 1e-2  # the normalisation did something
    weights = ens._spectral(ens.param_dict(), update=False)
    for name in ens.sn_names:
        w = weights[name].detach()
        s = torch.linalg.matrix_norm(w.reshape(3, w.shape[1], -1), ord=2)
        torch.testing.assert_close(s, torch.ones(3), atol=1e-3, rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_flops_of_the_ensemble_equal_k_separate_discriminators(layout):
    """FLOP accounting counts K vectorised discriminators like K separate ones (forward and backward)."""
    from gan_bench.cost import count_flops

    torch.manual_seed(0)
    modules = [_make("dcgan")() for _ in range(4)]
    ens = DiscriminatorEnsemble(copy.deepcopy(modules), layout=layout)
    x = torch.randn(8, 1, 16, 16)
    _, vec = count_flops(lambda: ens(x).sum().backward())
    _, loop = count_flops(lambda: sum(m(x).sum() for m in modules).backward())
    assert vec == loop > 0
    # one input copy per discriminator (MGD, gradient penalties), input gradients included
    xk = x.unsqueeze(0).expand(4, *x.shape).requires_grad_(True)
    _, vec = count_flops(lambda: ens(xk, per_member=True).sum().backward())
    xs = [x.clone().requires_grad_(True) for _ in modules]
    _, loop = count_flops(lambda: sum(m(xi).sum() for m, xi in zip(modules, xs)).backward())
    assert vec == loop > 0


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["dcgan", "mlp", "dcgan_mbd"])
def test_per_member_inputs_each_discriminator_sees_its_own_batch(kind, layout):
    torch.manual_seed(0)
    modules = [_make(kind)() for _ in range(3)]
    ref = [copy.deepcopy(m) for m in modules]
    ens = DiscriminatorEnsemble(modules, layout=layout)
    xs = torch.stack([_input(kind) for _ in range(3)])  # three different batches
    out = ens(xs, per_member=True)
    torch.testing.assert_close(out, torch.stack([m(x) for m, x in zip(ref, xs)]), atol=1e-5, rtol=0)
    # one backward of the sum on x.expand(K, ...) separates the K input-gradients
    x = _input(kind)
    xk = x.unsqueeze(0).expand(3, *x.shape).requires_grad_(True)
    assert torch.equal(ens.member_views(x), xk) and ens.member_views(x).data_ptr() == x.data_ptr()  # a view
    (g,) = torch.autograd.grad(ens(xk, per_member=True).sum(), xk)
    for i, m in enumerate(ref):
        xi = x.clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(m(xi).sum(), xi)
        torch.testing.assert_close(g[i], gi, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"one batch per discriminator, x of shape \[3, B, \.\.\.\]"):
        ens(x[:2], per_member=True)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("d_kind", ["dcgan", "dcgan_rp", "dcgan_sn"])
@pytest.mark.parametrize("kind", ["wgan_gp", "r1", "dragan"])
def test_ensemble_penalty_one_backward_equals_k_batched_backwards(kind, d_kind, layout):
    """The ensemble's per-member route and the generic is_grads_batched route give the same penalty and
    the same gradients w.r.t. every discriminator's parameters (also with random projections and spectral norm)."""
    from gan_bench.stabilizers.gradient_penalty import gradient_penalty

    torch.manual_seed(1)
    make = _make("dcgan" if d_kind == "dcgan_sn" else d_kind)
    ens = DiscriminatorEnsemble([make() for _ in range(3)], spectral_norm=d_kind == "dcgan_sn", layout=layout)
    ens.eval()  # no power iteration between the two routes' forward passes
    real, fake = _input("dcgan"), _input("dcgan")
    torch.manual_seed(5)
    fast = gradient_penalty(ens, real, fake, kind)
    torch.manual_seed(5)
    slow = gradient_penalty(lambda x: ens(x), real, fake, kind)  # a plain callable: the generic route
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    params = list(ens.param_dict().values())
    grads = [torch.autograd.grad(pen.sum(), params, materialize_grads=True) for pen in (fast, slow)]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
