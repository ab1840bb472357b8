"""The stabilisers are a registered group: the ``stabilizers`` section names each one as the code does, the options of
conf/stabilizers/ select several at once, a stabiliser of the user's own (the README's example, run from the README's
own text) plugs in by ``_target_``, each hook gets a narrow context and a wrong result is one line naming it, and the
``regularizer`` configs of earlier versions still resume and evaluate (bit-exactly)."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, cli, compose
from gan_bench.build import plain
from gan_bench.config import check_config
from gan_bench.errors import ConfigError
from gan_bench.stabilizers import (
    HOOKS,
    STABILIZERS,
    DTermContext,
    GradientPenalty,
    SetupContext,
    Stabilizer,
    Stabilizers,
    Unrolled,
    build_stabilizers,
)
from gan_bench.trust import check_trusted, complete, migrate

DATA = Path(__file__).resolve().parent / "data"
CONF = REPO / "conf" / "stabilizers"
README = (REPO / "README.md").read_text()
RING = ["dataset=ring8", "model=mlp", "model.generator.width=16", "model.discriminator.width=16", "model.z_dim=4",
        "train.batch_size=32", "dataset.n_points=512", "train.log_every=2", "train.checkpoint_every=4",
        "train.sample_every=1000", "train.progress=off", "train.device=cpu", "train.seed=3", "discriminators.count=2"]
POINTS = ["dataset=ring8", "model=mlp", "dataset.n_points=256", "train.batch_size=32", "train.device=cpu"]


# -- the section and the group ---------------------------------------------------------------------------------------
def test_the_section_has_one_node_per_registered_stabiliser_each_off_by_default():
    tree = compose([]).stabilizers
    assert list(tree) == STABILIZERS.names() == sorted(p.stem for p in CONF.glob("*.yaml"))
    for name in STABILIZERS.names():
        assert tree[name]["_target_"] == f"gan_bench.stabilizers.{name}.{STABILIZERS.entry(name).cls.__name__}"
    assert build_stabilizers(tree).named == {}  # each is off at its defaults


def test_every_option_of_the_group_switches_its_stabiliser_on_and_all_of_them_go_together():
    for name in STABILIZERS.names():
        assert list(build_stabilizers(compose([f"stabilizers={name}", *POINTS]).stabilizers).named) == [name]
    cfg = compose([f"stabilizers=[{','.join(STABILIZERS.names())}]", *POINTS])
    check_config(cfg)
    assert list(build_stabilizers(cfg.stabilizers).named) == STABILIZERS.names()


def test_a_key_switches_a_stabiliser_on_and_null_leaves_it_out():
    cfg = compose(["stabilizers.gradient_penalty.weight=3", "stabilizers.gradient_penalty.kind=r1"])
    (gp,) = build_stabilizers(cfg.stabilizers).named.values()
    assert isinstance(gp, GradientPenalty) and (gp.kind, gp.weight) == ("r1", 3.0)
    cfg = compose(["stabilizers=[gradient_penalty,unrolled]", "stabilizers.unrolled=null", *POINTS])
    check_config(cfg)
    assert list(build_stabilizers(cfg.stabilizers).named) == ["gradient_penalty"]


# -- a stabiliser of your own: the README's example ------------------------------------------------------------------
def _readme_block(lang: str, after: str) -> str:
    """The first ```lang block of README.md after the line ``after``."""
    start = README.index(after)
    match = re.search(rf"```{lang}\n(.*?)```", README[start:], re.S)
    assert match, f"no {lang} block after {after!r} in README.md"
    return match.group(1)


@pytest.fixture
def user_module(tmp_path, monkeypatch) -> Path:
    """The README's my_stabilizers.py, written from the README's text into a folder on sys.path."""
    code = _readme_block("python", "A stabiliser of your own")
    assert code.startswith("# my_stabilizers.py")
    (tmp_path / "my_stabilizers.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_stabilizers", None)


def _readme_commands() -> list[str]:
    block = _readme_block("bash", "# my_stabilizers.py")
    return [line.split("#")[0].strip() if line.startswith("gan-bench") else line for line in block.splitlines()]


def test_the_readme_stabiliser_adds_its_d_term_to_each_discriminator_loss(user_module):
    from gan_bench.game import seed_step
    from gan_bench.run import Run

    first = _readme_commands()[0].split()
    assert first[:2] == ["gan-bench", "train"] and "+stabilizers.drift._target_=my_stabilizers.DriftPenalty" in first
    run = Run(compose([*first[2:], *POINTS]), None)
    assert [type(s).__name__ for s in run.game.stab.named.values()] == ["DriftPenalty"]
    torch.manual_seed(1)
    sample = run.game.sample()
    grads = run.game.grad(("D",), sample)["D"]
    # reference: the Wasserstein D loss of each D plus 0.01 * E[D(x)^2], differentiated w.r.t. the stacked parameters
    with torch.random.fork_rng():
        seed_step(run.device, sample.seed)  # the evaluation's own draws, as the game makes them
        fake_x = run.G(sample.z).detach()
        real, fake = run.D(sample.real), run.D(fake_x)
    ref = (fake.mean(1) - real.mean(1)) + 0.01 * real.pow(2).mean(1)
    for a, b in zip(grads, torch.autograd.grad(ref.sum(), run.game.params("D"))):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(run.game.last["d/drift"], real.pow(2).mean(1).detach())


def test_the_readme_commands_train_with_the_user_stabiliser(user_module):
    """Both commands of the README, as written, in a user's project folder (its conf/stabilizers/drift.yaml made by
    the README's own printf), on a tiny budget."""
    import subprocess

    env = {"PYTHONPATH": f"{REPO}:{user_module}"}
    tiny = [*POINTS, "train.iterations=2", "train.log_every=1", "train.progress=off", "train.measure_flops=false"]
    first, make_yaml, second = _readme_commands()
    assert make_yaml.startswith("mkdir -p conf/stabilizers")
    subprocess.run(make_yaml, shell=True, check=True, cwd=user_module)
    for i, command in enumerate((first, second)):
        r = cli(*command.split()[1:], *tiny, f"hydra.run.dir=run{i}", cwd=user_module, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        stored = torch.load(user_module / f"run{i}" / "checkpoints" / "last.pt", weights_only=True)["config"]
        assert stored["stabilizers"]["drift"] == {"_target_": "my_stabilizers.DriftPenalty", "weight": 0.01}
    assert stored["stabilizers"]["gradient_penalty"]["kind"] == "wgan_gp"


def test_keys_of_a_user_stabiliser_are_checked_against_its_constructor(user_module):
    cfg = compose(["+stabilizers.drift._target_=my_stabilizers.DriftPenalty", "+stabilizers.drift.wieght=1"])
    with pytest.raises(ConfigError, match=r"stabilizers.drift.wieght does not apply to stabilizers.drift._target_="
                                          r"my_stabilizers.DriftPenalty \(its keys: weight\)"):
        check_config(cfg)
    cfg = compose(["+stabilizers.drift._target_=my_stabilizers.DriftPenalty", "+stabilizers.drift.weight=-1"])
    with pytest.raises(ConfigError, match=r"stabilizers.drift.weight=-1 is impossible"):
        check_config(cfg)


# -- what a stabiliser must be (one line each) -----------------------------------------------------------------------
class NoHooks(Stabilizer):
    pass


class SecondUnrolled(Unrolled):
    pass


class Shaped(Stabilizer):
    """A stabiliser whose hooks return ``value`` (a hook of each kind but the G-phase discriminator)."""

    def __init__(self, value):
        self.value = value

    def d_term(self, ctx):
        return self.value

    def g_term(self, losses, ctx):
        return self.value

    def penalty(self, ctx):
        return self.value


@pytest.mark.parametrize("overrides,needle", [
    (["+stabilizers.mine=3"], "stabilizers.mine must be a config node with a _target_ (choose an option of "
                              "stabilizers: feature_matching, gradient_penalty"),
    (["+stabilizers.mine.weight=1"],
     "stabilizers.mine must name its class with stabilizers.mine._target_=module.Class"),
    (["+stabilizers.mine._target_=nope.Mine"], "stabilizers.mine._target_=nope.Mine cannot be imported"),
    ([f"+stabilizers.mine._target_={__name__}.NoHooks"],
     f"stabilizers.mine (NoHooks) defines none of the stabiliser hooks {', '.join(HOOKS)}"),
    ([f"+stabilizers.again._target_={__name__}.SecondUnrolled", "+stabilizers.again.steps=1",
      "stabilizers.unrolled.steps=2"], "stabilizers.unrolled and stabilizers.again both define g_discriminator"),
])
def test_a_stabiliser_that_cannot_be_built_or_applied_is_one_line(overrides, needle):
    with pytest.raises(ConfigError) as err:
        check_config(compose([*overrides, *POINTS]))
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


@pytest.mark.parametrize("value,hook,needle", [
    (torch.zeros(3), "d_term", "stabilizers.bad: d_term must return a tensor of shape [K] = (2,) (one per "
                               "discriminator), got (3,)"),
    (torch.zeros(3), "g_term", "stabilizers.bad: g_term must return a tensor of shape [K] = (2,)"),
    (torch.zeros(2), "penalty", "stabilizers.bad: penalty must return a scalar tensor, got (2,)"),
    (0.5, "penalty", "stabilizers.bad: penalty must return a scalar tensor, got float"),
])
def test_a_hook_result_of_the_wrong_shape_is_one_line_naming_it(value, hook, needle):
    stab = Stabilizers({"bad": Shaped(value)})
    ctx = DTermContext(None, torch.zeros(1), torch.zeros(1), None, None, None, lambda k, v: None)
    with pytest.raises(ConfigError) as err:
        if hook == "d_term":
            stab.d_terms(torch.zeros(2), ctx)
        elif hook == "g_term":
            stab.g_terms(torch.zeros(2), ctx)
        else:
            stab.penalty("G", ctx.log)
    assert str(err.value) == needle or str(err.value).startswith(needle), str(err.value)


def test_gan_benchs_own_check_their_values_when_built_from_python():
    with pytest.raises(ValueError, match="kind=wgan is not supported: use one of none, wgan_gp, r1, dragan"):
        GradientPenalty("wgan")
    with pytest.raises(ValueError, match="method=rmsprop is not supported: use one of sgd, adam"):
        Unrolled(1, method="rmsprop")


def test_hooks_get_a_narrow_context_not_the_game():
    seen = {}

    class Spy(Stabilizer):
        def transform(self, x, ctx):
            seen["transform"] = ctx
            return x

        def d_term(self, ctx):
            seen["d_term"] = ctx
            return torch.zeros_like(ctx.real_out.logits[:, 0])

        def penalty(self, ctx):
            seen.setdefault("penalty", []).append(ctx.player)

    from gan_bench.run import Run

    run = Run(compose(POINTS), None)
    run.game.stab = Stabilizers({"spy": Spy()})
    run.game.grad(("G", "D"), run.game.sample())
    assert {type(c).__name__ for k, c in seen.items() if k != "penalty"} == {"InputContext", "DTermContext"}
    assert seen["penalty"] == ["D", "G"]
    for ctx in (seen["transform"], seen["d_term"]):
        assert not any(v is run.game for v in vars(ctx).values())


# -- the regularizer configs of earlier versions ---------------------------------------------------------------------
OLD = {"gp": "r1", "gp_weight": 5.0, "instance_noise": 0.1, "instance_noise_anneal": 20, "feature_matching": 0.5,
       "feature_matching_only": False, "historical_averaging": 0.01,
       "unroll": {"steps": 1, "lr": 0.0, "method": "adam"}}
NEW_KEYS = ["stabilizers.gradient_penalty.kind=r1", "stabilizers.gradient_penalty.weight=5",
            "stabilizers.instance_noise.std=0.1", "stabilizers.instance_noise.anneal_iters=20",
            "stabilizers.feature_matching.weight=0.5", "stabilizers.historical_averaging.weight=0.01",
            "stabilizers.unrolled.steps=1", "stabilizers.unrolled.method=adam"]


def test_a_stored_regularizer_section_completes_to_the_config_of_its_new_keys():
    new = plain(compose(NEW_KEYS))
    old = {k: v for k, v in new.items() if k != "stabilizers"} | {"regularizer": OLD}
    assert complete(old) == complete(new) == new
    assert "regularizer" not in migrate(old) and migrate(new) is new


def test_a_stored_config_keeps_the_users_own_stabilisers(user_module):
    new = plain(compose(["+stabilizers.drift._target_=my_stabilizers.DriftPenalty", "+stabilizers.drift.weight=0.5"]))
    assert complete(new) == new
    stored = {"stabilizers": new["stabilizers"]}  # the trust check of the stabilisers' nodes
    with pytest.raises(ConfigError, match="stabilizers.drift._target_=my_stabilizers.DriftPenalty, which is not a "
                                          "registered stabilizers option"):
        check_trusted(stored, [], {})
    check_trusted(stored, ["+stabilizers.drift._target_=my_stabilizers.DriftPenalty"], {})  # named on this command line


def test_a_stored_regularizer_key_no_version_had_is_refused():
    with pytest.raises(ConfigError, match=r"the stored config does not fit this gan-bench \(regularizer.gpp is no key"):
        complete({"regularizer": {"gpp": "r1"}})


def test_a_regularizer_checkpoint_resumes_bit_exactly_and_evaluates(tmp_path):
    """tests/data/regularizer_ring8_last.pt: ring8, 2 Ds, R1 (weight 5), instance noise (0.1, annealed over 20),
    feature matching 0.5, historical averaging 0.01, 1 unrolled Adam step, 4 iterations, written by the code before the
    stabilisers were a group (config section ``regularizer``, historical averaging's state under ``game.penalties``).
    Resumed to 8 iterations it equals a run of 8 iterations made now with the new keys: to float rounding (rtol
    1e-4), as the first 4 iterations ran on the CPU that wrote the file (see tests/test_security.py's format-2 test)."""
    from gan_bench.train import train
    from test_train import _assert_same, _weights

    stored = torch.load(DATA / "regularizer_ring8_last.pt", weights_only=True)
    assert stored["config"]["regularizer"] == OLD and set(stored["game"]["penalties"]) == {"G", "D"}
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(DATA / "regularizer_ring8_last.pt", run / "checkpoints" / "last.pt")
    r = cli("eval", str(run / "checkpoints" / "last.pt"), "eval.metrics=[modes]", "eval.n_samples=256",
            "--out", str(tmp_path / "eval.json"))
    assert r.returncode == 0, r.stderr[-2000:]
    r = cli("train", f"resume={run}", "train.iterations=8")
    assert r.returncode == 0, r.stderr[-2000:]
    straight = tmp_path / "straight"
    train(compose(["train.iterations=8", *RING, *NEW_KEYS]), straight)
    _assert_same(_weights(run), _weights(straight), rtol=1e-4)
    resumed = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert "regularizer" not in resumed["config"] and set(resumed["game"]["stabilizers"]) == {"historical_averaging"}


def test_setup_hands_the_players_parameters_and_ds_optimizer():
    class Keep(Stabilizer):
        def penalty(self, ctx):
            return None

        def setup(self, ctx):
            self.ctx = ctx

    stab = Stabilizers({"keep": Keep()})
    ctx = SetupContext({"G": [torch.zeros(1)], "D": [torch.zeros(2)]}, d_lr=0.1, d_betas=(0.0, 0.9))
    stab.setup(ctx)
    assert stab.named["keep"].ctx is ctx and stab.penalty("G", lambda k, v: None) is None
    assert stab.state_dict() == {}
