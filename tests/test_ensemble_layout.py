"""The ensemble's layouts (``vmap``: one vectorised call; ``loop``: one functional_call per member on slices of the
stacked parameters) compute the same discriminators: same outputs and gradients, same parameters, optimizer state
and checkpoint; ``auto`` picks the loop on the CPU and vmap on CUDA. The loop is K separate modules to the bit."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from gan_bench.errors import ConfigError
from gan_bench.models import dcgan, hgan, mlp
from gan_bench.models.ensemble import LAYOUTS, DiscriminatorEnsemble, resolve_layout
from gan_bench.models.member_call import MemberCall
from gan_bench.models.projection import Projected, RandomProjection

KINDS = ["dcgan", "mlp", "hgan", "hgan_bn", "dcgan_mbd", "dcgan_rp", "dcgan_sn"]
TIGHT = {"atol": 1e-6, "rtol": 1e-5}  # float rounding: grouped vs plain convolutions, batched vs plain matmuls


def _make(kind: str):
    if kind in ("dcgan", "dcgan_sn"):
        return lambda: dcgan.Discriminator((3, 16, 16), width=8)
    if kind == "dcgan_mbd":
        return lambda: dcgan.Discriminator((3, 8, 8), width=8, minibatch_kernels=4, minibatch_kernel_dim=3)
    if kind == "dcgan_rp":
        return lambda: Projected(RandomProjection((3, 16, 16)), dcgan.Discriminator((3, 16, 16), width=8))
    if kind in ("hgan", "hgan_bn"):  # 16 -> 8 -> 4 px, a 4x4 conv head; hgan_bn: batch statistics (mix the batch)
        norm = "batch" if kind == "hgan_bn" else "none"
        return lambda: hgan.ConvDiscriminator((3, 16, 16), num_filters=(8, 16), head_padding=0, norm=norm)
    if kind == "mlp_dropout":
        return lambda: mlp.Discriminator((2,), width=16, depth=2, dropout=0.5)
    return lambda: mlp.Discriminator((2,), width=16, depth=2)


def _input(kind: str, b: int = 6) -> torch.Tensor:
    if kind == "dcgan_mbd":
        return torch.randn(b, 3, 8, 8)
    return torch.randn(b, 3, 16, 16) if kind.startswith(("dcgan", "hgan")) else torch.randn(b, 2)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """An image batch as the loop layout hands it to its members on the CPU (channels-last)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _pair(kind: str, k: int = 3, seed: int = 0) -> dict[str, DiscriminatorEnsemble]:
    """The same K discriminators in each layout (deep copies: their own parameters and power-iteration vectors)."""
    torch.manual_seed(seed)
    ens = DiscriminatorEnsemble([_make(kind)() for _ in range(k)], spectral_norm=kind == "dcgan_sn", layout="vmap")
    loop = copy.deepcopy(ens)
    loop.layout = "loop"
    return {"vmap": ens, "loop": loop}


def _run(ens: DiscriminatorEnsemble, x: torch.Tensor, per_member: bool):
    """Outputs, features and the gradients (parameters, input) of a loss that weights each member differently."""
    x = x.detach().clone().requires_grad_(True)
    out, feats = ens(x, return_features=True, per_member=per_member)
    w = torch.arange(1, ens.count + 1, dtype=out.dtype)
    loss = (torch.sigmoid(out).mean(1) * w).sum() + (feats.pow(2).mean((1, 2)) * w).sum()
    params = list(ens.param_dict().values())
    grads = torch.autograd.grad(loss, params + [x])
    return out, feats, dict(zip(list(ens.param_dict()) + ["input"], grads))


def test_auto_is_the_loop_on_the_cpu_and_vmap_on_cuda():
    assert LAYOUTS == ("auto", "vmap", "loop")
    assert resolve_layout("auto", torch.device("cpu")) == "loop"
    assert resolve_layout("auto", torch.device("cuda")) == "vmap"
    assert resolve_layout("auto", torch.device("cuda:1")) == "vmap"
    assert resolve_layout("vmap", torch.device("cpu")) == "vmap" and resolve_layout("loop", "cuda") == "loop"
    ens = DiscriminatorEnsemble.build(_make("dcgan"), 2)
    assert ens.layout == "auto" and ens.active_layout == "loop"
    with pytest.raises(ValueError, match="layout='grouped' is not one of auto, vmap, loop"):
        DiscriminatorEnsemble([_make("mlp")()], layout="grouped")


@pytest.mark.parametrize("per_member", [False, True])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [1, 3])
def test_layouts_give_the_same_outputs_and_gradients(kind, k, per_member):
    ens = _pair(kind, k)
    x = torch.stack([_input(kind) for _ in range(k)]) if per_member else _input(kind)
    for mode in ("train", "eval"):  # train: spectral norm's power iteration runs (on both layouts alike)
        vec = _run(getattr(ens["vmap"], mode)(), x, per_member)
        loop = _run(getattr(ens["loop"], mode)(), x, per_member)
        torch.testing.assert_close(loop[0], vec[0], **TIGHT)
        torch.testing.assert_close(loop[1], vec[1], **TIGHT)
        assert loop[2].keys() == vec[2].keys()
        for name in vec[2]:
            # a conv bias that batch norm follows has a zero gradient: both layouts give rounding noise (~1e-6)
            tol = {**TIGHT, "atol": 1e-5} if (kind, name) == ("hgan_bn", "features.2.bias") else TIGHT
            torch.testing.assert_close(loop[2][name], vec[2][name], **tol, msg=name)
        for name, u in ens["vmap"].named_buffers():  # the power-iteration vectors, projections: equal
            assert torch.equal(u, ens["loop"].get_buffer(name)), name


@pytest.mark.parametrize("per_member", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_the_loop_is_k_separate_modules_to_the_bit(kind, per_member):
    """Same arithmetic as K separate modules (fed the NHWC batch the loop hands its members): outputs, features and
    parameter gradients are torch.equal."""
    torch.manual_seed(0)
    modules = [_make(kind)() for _ in range(3)]
    ens = DiscriminatorEnsemble(copy.deepcopy(modules), spectral_norm=kind == "dcgan_sn", layout="loop").eval()
    if kind == "dcgan_sn":  # fold the ensemble's normalisation into plain copies: the reference modules
        modules = [ens.unstack(i, m) for i, m in enumerate(modules)]
    x = _input(kind)
    xs = torch.stack([_input(kind) for _ in range(3)]) if per_member else x.expand(3, *x.shape)
    out, feats = ens(xs if per_member else x, return_features=True, per_member=per_member)
    refs = [m(_nhwc(x), return_features=True) for m, x in zip(modules, xs)]
    assert torch.equal(out, torch.stack([o for o, _ in refs])) and torch.equal(feats, torch.stack([f for _, f in refs]))
    if kind == "dcgan_sn":
        return  # the folded copies hold w / sigma as a leaf: their gradients are w.r.t. another tensor
    w = torch.arange(1.0, 4.0)  # the same loss arithmetic on both sides, so that its backward is the same too
    (torch.stack([torch.sigmoid(o).mean() for o in out.unbind(0)]) * w).sum().backward()
    (torch.stack([torch.sigmoid(o).mean() for o, _ in refs]) * w).sum().backward()
    for name, p in ens.param_dict().items():
        assert torch.equal(p.grad, torch.stack([m.get_parameter(name).grad for m in modules])), name


@pytest.mark.parametrize("kind", ["dcgan", "dcgan_sn"])
def test_functional_with_given_parameters_for_unrolling(kind):
    """``functional(params, x)`` with non-leaf stacked parameters (one SGD step, as unrolling takes): same value
    and the same second-order gradient w.r.t. the ensemble's parameters in both layouts."""
    ens = _pair(kind)
    x = _input(kind)
    results = {}
    for layout, e in ens.items():
        p = e.param_dict()
        loss = e.functional(p, x).sum()
        g = torch.autograd.grad(loss, list(p.values()), create_graph=True)
        stepped = {n: t - 0.1 * gi for (n, t), gi in zip(p.items(), g)}
        out = e.functional(stepped, x)
        results[layout] = (out, torch.autograd.grad(out.pow(2).sum(), list(p.values())))
    torch.testing.assert_close(results["loop"][0], results["vmap"][0], **TIGHT)
    for a, b in zip(results["loop"][1], results["vmap"][1]):  # spectral norm: gradients of size ~1e3, both layouts
        torch.testing.assert_close(a, b, atol=2e-6 * b.abs().max().item(), rtol=1e-5)  # ~1e-6 from float64


def test_dropout_loop_draws_member_after_member_like_separate_modules():
    """The loop draws each member's masks from the global generator in member order: from the same seed, it is
    K separate modules called in turn, to the bit. Masks are independent per member in both layouts (identical
    members give different outputs); the two layouts draw different numbers (vmap draws one [K, ...] tensor)."""
    torch.manual_seed(0)
    one = _make("mlp_dropout")()
    modules = [copy.deepcopy(one) for _ in range(3)]  # identical members: only the masks can tell them apart
    ens = DiscriminatorEnsemble(copy.deepcopy(modules), layout="loop").train()
    x = _input("mlp", b=32)
    torch.manual_seed(7)
    out = ens(x)
    torch.manual_seed(7)
    assert torch.equal(out, torch.stack([m.train()(x) for m in modules]))
    torch.manual_seed(7)
    assert torch.equal(ens(x), out)  # deterministic given the RNG state: resume is bit-exact
    ens.layout = "vmap"
    vec = ens(x)
    for o in (out, vec):
        assert not torch.equal(o[0], o[1]) and not torch.equal(o[1], o[2])
    ens.eval()
    with torch.no_grad():  # without dropout the identical members agree, in both layouts
        for layout in ("loop", "vmap"):
            e = ens(x, layout=layout)
            assert torch.equal(e[0], e[1]) and torch.equal(e[1], e[2])


def test_layout_is_not_state_checkpoints_move_between_layouts():
    ens = _pair("dcgan_sn")
    vmap_sd, loop_sd = ens["vmap"].state_dict(), ens["loop"].state_dict()
    assert list(vmap_sd) == list(loop_sd) and all(torch.equal(vmap_sd[n], loop_sd[n]) for n in vmap_sd)
    assert [n for n, _ in ens["vmap"].named_parameters()] == [n for n, _ in ens["loop"].named_parameters()]
    torch.manual_seed(3)
    other = _pair("dcgan_sn", seed=3)["loop"]
    other.load_state_dict(vmap_sd)
    x = _input("dcgan")
    torch.testing.assert_close(other.eval()(x), ens["vmap"].eval()(x), **TIGHT)


class _BranchesOnValues(nn.Module):
    """Runs as a plain module (and so in the loop layout) but not under vmap: Python control flow on a value."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 1)

    def forward(self, x, return_features=False):
        logit = self.head(x).squeeze(-1)
        if logit.sum() > 1e9:
            logit = -logit
        return (logit, x) if return_features else logit


def test_the_interface_check_probes_vmap_whatever_the_layout():
    """A class that could only run in the loop would train on the CPU and fail on a GPU: rejected on every device."""
    assert DiscriminatorEnsemble([_BranchesOnValues()], layout="loop")(torch.zeros(2, 2)).shape == (1, 2)
    with pytest.raises(ConfigError, match="cannot run as a vectorised ensemble"):
        DiscriminatorEnsemble.build(_BranchesOnValues, 2, in_shape=(2,), layout="loop")


def test_optimizer_steps_are_identical_across_layouts():
    """Adam on the stacked parameters: a few training steps in each layout end at the same parameters (up to
    rounding) and the loop's steps equal K separately trained modules' to the bit."""
    torch.manual_seed(0)
    modules = [_make("dcgan")() for _ in range(3)]
    ens = {layout: DiscriminatorEnsemble(copy.deepcopy(modules), layout=layout) for layout in ("vmap", "loop")}
    opts = {n: torch.optim.Adam(e.parameters(), lr=1e-2) for n, e in ens.items()}
    ref_opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in modules]
    for _ in range(3):
        x = _input("dcgan", b=4)
        for name, e in ens.items():
            opts[name].zero_grad()
            e(x).pow(2).sum().backward()
            opts[name].step()
        for m, opt in zip(modules, ref_opts):
            opt.zero_grad()
            m(_nhwc(x)).pow(2).sum().backward()
            opt.step()
    for name, p in ens["loop"].param_dict().items():
        torch.testing.assert_close(p, ens["vmap"].param_dict()[name], atol=1e-5, rtol=1e-4)
        assert torch.equal(p, torch.stack([m.get_parameter(name) for m in modules])), name


class _Tied(nn.Module):
    """A tied weight (b.weight is a.weight), a submodule registered twice and a buffer."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 3), nn.Linear(3, 3)
        self.b.weight = nn.Parameter(torch.randn(3, 3))
        self.c = nn.Linear(3, 3)
        self.c.weight = self.b.weight
        self.again = self.a
        self.register_buffer("scale", torch.tensor(2.0))

    def forward(self, x, return_features=False):
        f = self.c(self.b(torch.tanh(self.again(x)))) * self.scale
        return (f.sum(-1), f) if return_features else f.sum(-1)


def test_tied_and_shared_tensors_and_the_template_stays_stateless():
    torch.manual_seed(0)
    modules = [_Tied() for _ in range(3)]
    ens = {layout: DiscriminatorEnsemble(copy.deepcopy(modules), layout=layout) for layout in ("vmap", "loop")}
    x = torch.randn(5, 2)
    out = {layout: e(x) for layout, e in ens.items()}
    assert torch.equal(out["loop"], torch.stack([m(x) for m in modules]))
    torch.testing.assert_close(out["loop"], out["vmap"], **TIGHT)
    grads = {layout: torch.autograd.grad(o.pow(2).sum(), list(ens[layout].parameters())) for layout, o in out.items()}
    for a, b in zip(grads["loop"], grads["vmap"]):
        torch.testing.assert_close(a, b, **TIGHT)
    with pytest.raises(RuntimeError):
        ens["loop"](torch.randn(5, 4))  # a failing forward puts the template's own (meta) tensors back too
    template = ens["loop"]._base[0]
    assert all(t.is_meta for t in [*template.parameters(), *template.buffers()])
    assert template.c.weight is template.b.weight and template.again is template.a


class _Views(nn.Module):
    """A conv net that flattens with ``.view`` (fails on an NHWC activation) and records its inputs' layout."""

    seen: list[bool] = []

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 4, 3, 2, 1), nn.Linear(4 * 4 * 4, 1)

    def forward(self, x, return_features=False):
        _Views.seen.append(x.is_contiguous(memory_format=torch.channels_last))
        h = torch.relu(self.conv(x))
        f = h.view(h.shape[0], -1)
        return (self.head(f).squeeze(-1), f) if return_features else self.head(f).squeeze(-1)


def test_the_loop_hands_image_batches_channels_last_and_falls_back_for_a_class_that_needs_nchw():
    torch.manual_seed(0)
    ens = _pair("dcgan")["loop"]
    x = _input("dcgan")
    seen = []
    for layout in ("loop", "vmap"):  # whatever the layout, the probe tries the loop (it may change on resume)
        _Views.seen.clear()
        e = DiscriminatorEnsemble.build(_Views, 2, in_shape=(3, 8, 8), layout=layout)
        assert e.loop_channels_last is False  # the probe found .view failing on NHWC: default layout kept
        seen.append(_Views.seen[:])
        for how in ("loop", "vmap"):
            assert e(torch.randn(4, 3, 8, 8), layout=how).shape == (2, 4)
    assert seen[0] == seen[1] and True in seen[0] and seen[0][-2:] == [False, False]  # NHWC tried, NCHW kept
    assert ens.loop_channels_last and ens._loop_inputs(x, False)[0].is_contiguous(memory_format=torch.channels_last)
    views = ens._loop_inputs(x.expand(3, *x.shape), True)
    assert len(views) == 3 and all(v.is_contiguous(memory_format=torch.channels_last) for v in views)


class _Fails(nn.Module):
    """Fails inside its forward, after its first layer ran with the swapped-in tensors."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 3), nn.Linear(3, 1)
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x, return_features=False):
        h = self.a(x) * self.scale
        raise RuntimeError(f"failed after a layer of width {h.shape[-1]}")


def test_member_call_puts_the_templates_tensors_back_when_the_forward_raises():
    m = _Fails()
    own = dict([*m.named_parameters(), *m.named_buffers()])
    call = MemberCall(m)
    swapped = {n: torch.zeros_like(t) for n, t in own.items()}
    with pytest.raises(RuntimeError, match="failed after a layer of width 3"):
        call(swapped, torch.zeros(4, 2))
    assert all(t is own[n] for n, t in [*m.named_parameters(), *m.named_buffers()])
    with pytest.raises(KeyError):  # a missing tensor: the ones swapped before it are put back too
        call({"a.weight": swapped["a.weight"]}, torch.zeros(4, 2))
    assert all(t is own[n] for n, t in [*m.named_parameters(), *m.named_buffers()])
    assert isinstance(m.a.weight, nn.Parameter) and m.a.weight.requires_grad


def test_mgd_rows_one_backward_per_discriminator_equal_the_vmapped_pass():
    """The loop layout's MGD route (K backward passes through G, graph kept until the last) gives the rows of the
    batched pass; a parameter no loss reaches gets zero columns in both."""
    from gan_bench.aggregation import batched_vjp_rows, per_loss_grads

    torch.manual_seed(0)
    G = dcgan.Generator(8, (3, 16, 16), width=8)
    unused = nn.Parameter(torch.ones(3))
    params = [*G.parameters(), unused]
    images = G(torch.randn(4, 8))
    cot = torch.randn(3, *images.shape)
    rows = {b: batched_vjp_rows(images, cot, params, retain_graph=True, batched=b) for b in (True, False)}
    torch.testing.assert_close(rows[False], rows[True], atol=1e-6, rtol=1e-5)
    assert rows[False].shape == (3, sum(p.numel() for p in params)) and not rows[False][:, -3:].any()
    losses = torch.stack([(images * c).sum() for c in cot])
    torch.testing.assert_close(per_loss_grads(losses, params, retain_graph=True, batched=False), rows[True],
                               atol=1e-6, rtol=1e-5)
    per_loss_grads(losses, params, batched=False)  # the last pass frees the graph
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        per_loss_grads(losses, params, batched=False)


# -- the config key: discriminators.layout ---------------------------------------------------------------------------
def test_the_config_key_reaches_the_ensemble_and_a_bad_value_is_one_line():
    from conftest import compose
    from gan_bench.models import build_discriminators

    shape = (2,)
    base = ["dataset=ring8", "model=mlp", "discriminators.count=2", "model.discriminator.width=8"]
    assert compose(base).discriminators.layout == "auto"
    for layout in LAYOUTS:
        ens = build_discriminators(compose([*base, f"discriminators.layout={layout}"]), shape)
        assert ens.layout == layout and ens.active_layout == resolve_layout(layout, torch.device("cpu"))
    with pytest.raises(ConfigError) as err:
        compose([*base, "discriminators.layout=grouped"])
    msg = str(err.value)
    assert "\n" not in msg and "discriminators.layout" in msg and "grouped" in msg, msg
    assert all(name in msg for name in LAYOUTS), msg


def test_the_layout_may_change_on_resume_and_a_resume_in_one_layout_is_bit_exact(tmp_path):
    """Not part of the checkpoint's configuration fingerprint; loop runs (dropout drawn member after member, MGD's
    per-member route) resume to the bit."""
    from conftest import DEVICE, compose
    from gan_bench.checkpoint import resumable
    from gan_bench.train import train

    assert resumable("discriminators.layout") and not resumable("discriminators.count")
    args = ["dataset=ring8", "model=mlp", "model.generator.width=8", "model.discriminator.width=8", "model.z_dim=4",
            "model.discriminator.dropout=0.3", "discriminators.count=3", "aggregation=mgd", "train.batch_size=16",
            "dataset.n_points=256", "train.log_every=2", "train.sample_every=1000", "train.checkpoint_every=1000",
            "train.progress=off", "train.measure_flops=false", *DEVICE]
    train(compose([*args, "train.iterations=4", "discriminators.layout=loop"]), tmp_path / "full")
    train(compose([*args, "train.iterations=2", "discriminators.layout=loop"]), tmp_path / "part")
    train(compose([*args, "train.iterations=4", "discriminators.layout=loop", "resume=true"]), tmp_path / "part")
    full, part = (torch.load(tmp_path / r / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
                  for r in ("full", "part"))
    assert full["iteration"] == part["iteration"] == 4
    for player in ("G", "D"):
        for name, t in full[player].items():
            assert torch.equal(t, part[player][name]), (player, name)
    out = train(compose([*args, "train.iterations=6", "discriminators.layout=vmap", "resume=true"]), tmp_path / "part")
    assert out["iterations"] == 6 and out["cost"]["discriminators_layout"] == "vmap"
    assert all(torch.isfinite(torch.tensor(v)) for v in out["final"].values())


def test_cli_trains_in_each_layout_with_hv_and_mgd(tmp_path):
    """`gan-bench train` on the ring8 / MLP toy, K = 3: both layouts, HV and MGD (its per-member route), finite
    losses, and each layout's run the other's up to float rounding."""
    import json

    from conftest import DEVICE, cli

    sweep = tmp_path / "sweep"
    r = cli("train", "-m", "discriminators.layout=loop,vmap", "aggregation=hv,mgd", "discriminators.count=3",
            "dataset=ring8", "model=mlp", "model.generator.width=16", "model.discriminator.width=16",
            "model.z_dim=4", "train.batch_size=32", "dataset.n_points=256", "train.iterations=3",
            "train.log_every=1", "train.sample_every=1000", "train.checkpoint_every=1000", "train.progress=off",
            *DEVICE, f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]
    runs = {}
    for job in sorted(sweep.iterdir()):
        if not job.is_dir():
            continue
        overrides = (job / ".hydra" / "overrides.yaml").read_text()
        m = json.loads((job / "metrics.json").read_text())
        layout = "loop" if "discriminators.layout=loop" in overrides else "vmap"
        agg = "mgd" if "aggregation=mgd" in overrides else "hv"
        assert m["iterations"] == 3 and m["cost"]["discriminators_layout"] == layout
        losses = {k: v for k, v in m["final"].items() if k.startswith(("g/l_k/", "d/loss/"))}
        assert len(losses) == 8 and all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
        runs[layout, agg] = losses
    assert len(runs) == 4
    for agg in ("hv", "mgd"):
        for key, v in runs["loop", agg].items():
            assert abs(v - runs["vmap", agg][key]) <= 1e-4 * max(1.0, abs(v)), (agg, key)
