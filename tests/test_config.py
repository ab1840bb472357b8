"""The config contract: every option composes; every key that does not apply to the chosen option, every unknown key
(however added), every impossible value and every renamed key fails before anything is written, with one line."""
from __future__ import annotations

import copy
import dataclasses
import functools
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import cli, cli_here, compose
from gan_bench.config import check_config, component_groups
from gan_bench.errors import ConfigError

CONF = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ["dataset", "model", "discriminators", "discriminators/projection", "aggregation", "optimizer",
          "optimizer/rule", "optimizer/base", "loss", "model/generator", "model/discriminator"]
POINTS = ["dataset=ring8", "model=mlp"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _check(overrides: list[str]) -> None:
    check_config(compose(overrides))


def test_groups_have_options():
    for g in GROUPS + ["experiment"]:
        assert _options(g), g


def _extra(group: str, option: str) -> list[str]:
    """What an option needs besides itself to form a valid config."""
    if group == "dataset" and option in ("ring8", "grid25"):
        return ["model=mlp"]
    if group == "dataset" and option == "image_folder":
        return ["dataset.root=/some/folder"]
    if group == "discriminators/projection" and option == "linear_wn":  # a vector: an MLP discriminator behind it
        return ["model=mlp_mnist"]
    if option == "resnet":  # SNGAN's nets exist at 32, 48 and 64 px
        return ["dataset.resolution=32"]
    if option in ("hgan_conv", "hgan_cifar64"):  # the multi-D paper's 64x64 nets, each D behind its conv projection
        return ["dataset=cifar10_64", "discriminators/projection=conv_wn"]
    if option == "hgan_convt":
        return ["dataset=cifar10_64"]
    if option == "hgan_stacked_mnist":  # 3 x 28 x 28, each D behind a 3 -> 3 conv projection
        return ["dataset=mnist", "dataset.channels=3", "discriminators/projection=conv_wn",
                "discriminators.projection.out_channels=3"]
    if option == "lagan_mnist":
        return ["dataset=mnist"]
    return []


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes_and_checks(group):
    for option in _options(group):
        if option == "custom":  # an empty node for a class of one's own (tests/test_plugins.py)
            with pytest.raises(ConfigError, match=r"_target_ needs a value"):
                check_config(compose([f"{group}={option}"]))
            continue
        cfg = compose([f"{group}={option}", *_extra(group, option)])
        check_config(cfg)


def _defaults_and_metrics(exp: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The (group, option) overrides and eval.metrics of an experiment file, following /experiment/NAME includes."""
    node = OmegaConf.to_container(OmegaConf.load(CONF / "experiment" / f"{exp}.yaml"))
    groups: list[tuple[str, str]] = []
    metrics = list((node.get("eval") or {}).get("metrics") or [])
    for entry in node.get("defaults") or []:
        for key, value in (entry.items() if isinstance(entry, dict) else []):
            group = key.removeprefix("override ").strip("/")
            groups.append((group, value))
        if isinstance(entry, str) and entry.startswith("/experiment/"):
            more, more_metrics = _defaults_and_metrics(entry.removeprefix("/experiment/"))
            groups += more
            metrics = metrics or more_metrics
    return groups, metrics


def skip_if_waiting_for_an_option(exp: str) -> None:
    """Presets may name a dataset or metric another branch is adding (stacked_mnist, modes_stacked): skip those
    presets cleanly until the option exists, instead of failing the suite."""
    from gan_bench.config import metric_names

    groups, metrics = _defaults_and_metrics(exp)
    for group, option in groups:
        if not (CONF / group / f"{option}.yaml").exists():
            pytest.skip(f"{exp}: {group}={option} is not an option yet")
    for metric in metrics:
        if metric not in metric_names():
            pytest.skip(f"{exp}: eval.metrics {metric} is not registered yet")


@pytest.mark.parametrize("exp", _options("experiment"))
def test_every_experiment_composes_and_checks(exp):
    skip_if_waiting_for_an_option(exp)
    cfg = compose([f"+experiment={exp}"])
    check_config(cfg)
    assert cfg.name == exp


def test_reproduction_scripts_name_existing_presets():
    import re

    scripts = sorted((CONF.parent / "scripts" / "reproduce").glob("*.sh"))
    assert scripts
    for script in scripts:
        for names in re.findall(r"\+experiment=([\w,${}]+)", script.read_text()):
            for name in names.split(","):
                name = name.replace("${DATASET}", "cifar")
                assert (CONF / "experiment" / f"{name}.yaml").is_file(), f"{script.name}: no preset {name}"


@pytest.mark.parametrize("exp", _options("experiment"))
def test_presets_point_at_the_classifier_that_classifier_train_writes(exp):
    from gan_bench.classifier_command import default_classifier_path

    skip_if_waiting_for_an_option(exp)
    cfg = compose([f"+experiment={exp}"])
    if "fid_classifier" in cfg.eval.metrics:
        arch = "lenet" if cfg.dataset.channels == 1 else "resnet18"
        path = default_classifier_path(cfg.dataset.name, cfg.dataset.resolution, arch)
        # null: the same file is looked for there (then in the cache; the digits' LeNet trained once if missing)
        assert cfg.eval.classifier in (None, path)


def test_discriminators_by_group_and_by_count():
    assert compose(["discriminators=d24"]).discriminators.count == 24
    assert compose(["discriminators.count=5"]).discriminators.count == 5
    assert compose(["+experiment=cifar_hv24"]).discriminators.count == 24


# -- keys that do not apply to the chosen option ------------------------------------------------------------------
def _component_options():
    """(config path, group, option, a key of another option of the same group that this option does not take,
    prefix): every such key added with "+", and the first one also as a plain override. The first key's cases go
    through Hydra's composition of the overrides; the others (prefix "~+", not a Hydra prefix: a marker here) are
    added to the option's composed config, which is what "+" does, without composing it again for every key."""
    cases = []
    for where, registry in component_groups().items():
        keys = {}
        for name in registry.names():
            schema = registry.schema(registry.entry(name).cls)
            keys[name] = {f.name for f in dataclasses.fields(schema)} - {"_target_"} if schema else set()
        every = set().union(*keys.values()) | {"not_a_key"}
        for name in registry.names():
            for i, key in enumerate(sorted(every - keys[name])):
                cases += [(where, registry.group, name, key, prefix) for prefix in (("+", "") if i == 0 else ("~+",))]
    return cases


@functools.lru_cache(maxsize=None)
def _composed(overrides: tuple[str, ...]):
    return compose(list(overrides))


def _check_with_key_added(overrides: list[str], where: str, key: str) -> None:
    """check_config of the composed ``overrides`` with ``where.key=1`` added to it, as ``+where.key=1`` adds it."""
    cfg = copy.deepcopy(_composed(tuple(overrides)))
    OmegaConf.set_struct(cfg, False)
    OmegaConf.update(cfg, f"{where}.{key}", 1, force_add=True)
    check_config(cfg)


def _group_override(group: str, name: str) -> list[str]:
    if group == "optimizer/base":
        return [f"optimizer/base={name}"]
    return [f"{group}={name}"]


@pytest.mark.parametrize("where,group,option,key,prefix", _component_options(),
                         ids=lambda v: str(v).replace("/", ".") or "plain")
def test_every_key_of_another_option_is_refused_naming_key_and_option(where, group, option, key, prefix):
    """Whether added with + (which Hydra lets through) or as a plain override, a key that the chosen option does not
    take fails with one line naming the key and the option."""
    with pytest.raises(ConfigError) as err:
        if prefix == "~+":
            _check_with_key_added([*_group_override(group, option), *_extra(group, option)], where, key)
        else:
            _check([*_group_override(group, option), *_extra(group, option), f"{prefix}{where}.{key}=1"])
    msg = str(err.value)
    assert f"{where}.{key} does not apply to {group}={option}" in msg, msg
    assert "\n" not in msg


@pytest.mark.parametrize("overrides,needle", [
    (["optimizer.g.momentum=0.9"], "optimizer.g.momentum does not apply to optimizer/base=adam"),
    (["+optimizer.d.momentum=0.9"], "optimizer.d.momentum does not apply to optimizer/base=adam"),
    (["optimizer/base=sgd", "optimizer.g.betas=[0.5,0.9]"], "optimizer.g.betas does not apply to optimizer/base=sgd"),
    (["+dataset.n_points=5"], "dataset.n_points does not apply to dataset=digits"),
    (["dataset.std=0.1"], "dataset.std does not apply to an image dataset"),
    (["dataset=ring8", "model=mlp", "+dataset.resolution=8"], "dataset.resolution does not apply to dataset=ring8"),
    (["+train.iteratons=5"], "train.iteratons is not a config key; valid keys of train: iterations"),
    (["train.iteratons=5"], "train.iteratons is not a config key"),
    (["+stabilizers.unrolled.step=3"], "stabilizers.unrolled.step does not apply to stabilizers=unrolled (its keys: "
                                       "lr, method, steps)"),
    (["stabilizers.unrolled.step=3"], "stabilizers.unrolled.step does not apply to stabilizers.unrolled (its keys: "
                                      "steps, lr, method)"),
    (["stabilizers.gradient_penalti.kind=r1"], "stabilizers.gradient_penalti is not a config key"),
    (["+stabilizers.gradient_penalti.kind=r1"], "stabilizers.gradient_penalti must name its class with "
                                                "stabilizers.gradient_penalti._target_=module.Class"),
    (["+seed=3"], "seed is not a config key"),
])
def test_unknown_and_misplaced_keys_are_refused(overrides, needle):
    with pytest.raises(ConfigError) as err:
        _check(overrides)
    assert needle in str(err.value)


@pytest.mark.parametrize("override,new", [
    ("model.g_width=8", "model.generator.width"), ("model.d_norm=layer", "model.discriminator.norm"),
    ("model.spectral_norm=true", "discriminators.spectral_norm"),
    ("model.minibatch_discrimination.b=4", "model.discriminator.minibatch_kernels"),
    ("optimizer.update=svre", "optimizer/rule=NAME"), ("optimizer.name=sgd", "optimizer/base=NAME"),
    ("aggregation.name=hv", "aggregation=NAME"), ("+optimizer.svre.epoch_length=3", "optimizer.rule.KEY"),
    ("discriminators.projection=random", "discriminators/projection=random"),
    ("regularizer.gp=r1", "stabilizers.gradient_penalty.kind"),
    ("regularizer.gp_weight=5", "stabilizers.gradient_penalty.weight"),
    ("regularizer.instance_noise=0.1", "stabilizers.instance_noise.std"),
    ("regularizer.instance_noise_anneal=10", "stabilizers.instance_noise.anneal_iters"),
    ("regularizer.feature_matching=1", "stabilizers.feature_matching.weight"),
    ("regularizer.feature_matching_only=true", "stabilizers.feature_matching.only"),
    ("regularizer.historical_averaging=0.1", "stabilizers.historical_averaging.weight"),
    ("regularizer.unroll.steps=5", "stabilizers.unrolled.steps"),
    ("regularizer.unroll.lr=0.1", "stabilizers.unrolled.lr"),
    ("regularizer.unroll.method=adam", "stabilizers.unrolled.method"),
    ("+regularizer.unroll.step=3", "stabilizers.unrolled.KEY"), ("+regularizer.foo=1", "stabilizers.NAME.KEY"),
])
def test_an_old_key_gets_one_line_naming_the_new_one(override, new):
    with pytest.raises(ConfigError) as err:
        compose([override])
    assert new in str(err.value) and "\n" not in str(err.value)


# -- impossible values --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override,needle", [
    (["discriminators.count=0"], "discriminators.count=0 is impossible"),
    (["optimizer.g.lr=-0.1"], "optimizer.g.lr=-0.1"),
    (["optimizer.d.lr=0"], "optimizer.d.lr=0"),
    (["optimizer.base.lr=-1"], "optimizer.base.lr=-1"),
    (["aggregation=hv", "aggregation.delta=1.0"], "aggregation.delta=1.0 is impossible"),
    (["aggregation=gman", "aggregation.lam=-1"], "aggregation.lam=-1"),
    (["train.n_dis=0"], "train.n_dis=0 is impossible"),
    (["optimizer.lookahead.alpha=1.5"], "lookahead.alpha=1.5"),
    (["optimizer.averaging.ema=1.5"], "beta=1.5 is impossible"),
    (["dataset=ring8"], "model.generator (model/generator=dcgan): the DCGAN generator needs square images"),
    (["dataset.resolution=20"], "dataset.resolution=20 is not supported"),
    (["dataset.resolution=512"], "dataset.resolution=512 is not supported: use one of 8, 16, 28, 32, 48, 64, 128, 256"),
    (["dataset.channels=2"], "dataset.channels=2 is not supported"),
    (["loss.real_label=0"], "loss.real_label=0"),
    (["loss=hinge", "+loss.real_label=0.9"], "loss.real_label does not apply to loss=hinge"),
    (["stabilizers.gradient_penalty.kind=wgan_gp", "model.discriminator.norm=batch"],
     "stabilizers.gradient_penalty needs each D output to depend on its own sample only"),
    (["stabilizers=[gradient_penalty]", "stabilizers.gradient_penalty.kind=r1",
      "model.discriminator.minibatch_kernels=4"], "mix the batch"),
    (["stabilizers.feature_matching.only=true"], "stabilizers.feature_matching.only=true needs weight > 0"),
    (["aggregation=mgd", "aggregation.solver=exact", "discriminators.count=16"], "aggregation.solver=exact"),
    (["aggregation=mgd", "aggregation.solver=qp"], "aggregation.solver: Invalid value 'qp', expected one of"),
    (["stabilizers.unrolled.lr=-1"], "stabilizers.unrolled.lr=-1"),
    (["stabilizers.unrolled.steps=-2"], "stabilizers.unrolled.steps=-2 is impossible"),
    (["stabilizers.instance_noise.std=-0.5"], "stabilizers.instance_noise.std=-0.5 is impossible"),
    (["stabilizers.instance_noise.anneal_iters=-3"], "stabilizers.instance_noise.anneal_iters=-3 is impossible"),
    (["stabilizers.gradient_penalty.weight=-1"], "stabilizers.gradient_penalty.weight=-1"),
    (["stabilizers.feature_matching.weight=-1"], "stabilizers.feature_matching.weight=-1"),
    (["stabilizers.historical_averaging.weight=-1"], "stabilizers.historical_averaging.weight=-1"),
    (["stabilizers.gradient_penalty.kind=wgan"], "stabilizers.gradient_penalty.kind: Invalid value 'wgan'"),
    (["discriminators.layout=grouped"], "discriminators.layout: Invalid value 'grouped', expected one of [auto, vmap, "
                                        "loop]"),
    (["optimizer=svre", "optimizer.rule.noise_set=-5"], "optimizer.rule.noise_set=-5"),
    (["optimizer=svre", "dataset=image_folder", "dataset.root=/x"],
     "optimizer/rule=svre needs a finite sum held in memory"),
    (["train.iterations=many"], "train.iterations: Value 'many' of type 'str' could not be converted to Integer"),
    (["eval.metrics=[fidd]"], "eval.metrics: unknown metric 'fidd'"),
    (["eval.generators=[raw,best]"], "eval.generators"),
    (["dataset=image_folder"], "dataset.root needs a value"),
    (["model.generator._target_=nope.Gen"],
     "model.generator._target_=nope.Gen cannot be imported (no module named 'nope')"),
    (["model=mlp", "dataset=ring8", "model.discriminator.dropout=1.0"],
     "model.discriminator.dropout=1.0 is impossible"),
    (["discriminators/projection=conv_wn", "dataset=ring8", "model=mlp"], "conv_wn projects images"),
])
def test_impossible_values_are_rejected_with_one_line(override, needle):
    with pytest.raises(ConfigError) as err:
        _check(override)
    assert needle in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


# -- the CLI: nothing is written, one line, non-zero exit ----------------------------------------------------------
def test_cli_unknown_group_option_lists_valid_options(tmp_path, capsys):
    r = cli_here(capsys, "train", "dataset=cifr10", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2
    assert "cifr10" in r.stderr and "cifar10" in r.stderr and "mnist" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


BAD_CLI = [
    (["aggregation=avg", "+aggregation.delta=3"], "aggregation.delta does not apply to aggregation=avg"),
    (["aggregation=avg", "aggregation.delta=3"], "aggregation.delta does not apply to aggregation=avg"),
    (["+train.iteratons=5"], "train.iteratons is not a config key"),
    (["train.iterations=many"], "many"),
    (["dataset.resolution=512"], "dataset.resolution=512 is not supported"),
    (["discriminators.count=0"], "discriminators.count=0 is impossible"),
    (["discriminators.layout=vmapp"], "discriminators.layout: Invalid value 'vmapp', expected one of [auto, vmap, "
                                      "loop]"),
    (["model.g_width=8"], "model.g_width was renamed: use model.generator.width"),
]


def _one_line_refusal(r: subprocess.CompletedProcess, needle: str, run: Path) -> None:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gan-bench: error: ") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not run.exists()


@pytest.mark.parametrize("args,needle", BAD_CLI)
def test_cli_bad_config_one_line_exit_2_and_nothing_written(tmp_path, capsys, args, needle):
    _one_line_refusal(cli_here(capsys, "train", *args, f"hydra.run.dir={tmp_path}/run"), needle, tmp_path / "run")


def test_cli_bad_config_as_a_process_one_line_exit_2_and_nothing_written(tmp_path):
    """The same refusal through a real ``gan-bench`` process: its exit status and its stderr."""
    args, needle = BAD_CLI[0]
    _one_line_refusal(cli("train", *args, f"hydra.run.dir={tmp_path}/run"), needle, tmp_path / "run")


def test_cli_batch_larger_than_dataset(tmp_path):
    r = cli("train", "train.batch_size=5000", "model.generator.width=8", "model.discriminator.width=8",
            f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2
    assert "train.batch_size=5000 is larger than dataset=digits (1797 examples)" in r.stderr
    assert not (tmp_path / "run").exists()


def test_errors_found_while_building_are_config_errors(tmp_path):
    import numpy as np
    from PIL import Image

    from gan_bench.run import Run

    for i in range(4):
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(ConfigError, match="optimizer/rule=svre needs a finite sum held in memory"):
        Run(compose(["optimizer=svre", "dataset=image_folder", f"dataset.root={tmp_path}", "dataset.resolution=8",
                     "train.batch_size=2"]), None)


def test_config_values_reach_the_components():
    """The _target_ nodes build what they say: the options' classes with their keys."""
    from gan_bench.run import Run

    run = Run(compose(["aggregation=hv", "aggregation.delta=2.5", "discriminators.count=2", "optimizer/base=sgd",
                       "optimizer.g.momentum=0.5", "optimizer.d.lr=0.03", "loss=ls", "loss.real_label=0.9",
                       "model.generator.width=8", "model.discriminator.width=8", "dataset.resolution=8"]), None)
    assert type(run.agg).__name__ == "Hypervolume" and run.agg.delta == 2.5 and run.agg.k == 2
    g, d = run.opt.optimizers["G"], run.opt.optimizers["D"]
    assert type(g).__name__ == "SGD" and g.defaults["momentum"] == 0.5 and g.defaults["lr"] == 0.01
    assert d.defaults["momentum"] == 0.0 and d.defaults["lr"] == 0.03
    assert type(run.game.loss).__name__ == "LeastSquares" and run.game.loss.real_label == 0.9
    assert OmegaConf.select(run.cfg, "model.generator._target_") == "gan_bench.models.dcgan.Generator"
