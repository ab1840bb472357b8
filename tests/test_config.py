"""Every group option composes; impossible values and typos fail before training with a clear message."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import compose, cli
from gan_bench.config import validate
from gan_bench.errors import ConfigError

CONF = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ["dataset", "model", "discriminators", "aggregation", "optimizer", "loss"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_groups_have_options():
    for g in GROUPS + ["experiment"]:
        assert _options(g), g


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes(group):
    for option in _options(group):
        extra = []
        if group == "dataset" and option in ("ring8", "grid25"):
            extra = ["model=mlp"]
        if group == "model" and option == "mlp":
            extra = ["dataset=ring8"]
        cfg = compose([f"{group}={option}", *extra])
        assert OmegaConf.select(cfg, f"{group}") is not None
        if option != "image_folder":  # its root is a required value (???)
            validate(cfg)


@pytest.mark.parametrize("exp", _options("experiment"))
def test_every_experiment_composes_and_validates(exp):
    cfg = compose([f"+experiment={exp}"])
    validate(cfg)
    assert cfg.name == exp


@pytest.mark.parametrize("exp", _options("experiment"))
def test_presets_point_at_the_classifier_that_classifier_train_writes(exp):
    from gan_bench.evaluate import default_classifier_path

    cfg = compose([f"+experiment={exp}"])
    if "fid_classifier" in cfg.eval.metrics:
        arch = "lenet" if cfg.dataset.channels == 1 else "resnet18"
        assert cfg.eval.classifier == default_classifier_path(cfg.dataset.name, cfg.dataset.resolution, arch)


def test_discriminators_by_group_and_by_count():
    assert compose(["discriminators=d24"]).discriminators.count == 24
    assert compose(["discriminators.count=5"]).discriminators.count == 5
    assert compose(["+experiment=cifar_hv24"]).discriminators.count == 24


@pytest.mark.parametrize("override,needle", [
    (["discriminators.count=0"], "discriminators.count=0"),
    (["optimizer.g.lr=-0.1"], "optimizer.g.lr=-0.1"),
    (["optimizer.d.lr=0"], "optimizer.d.lr=0"),
    (["aggregation=hv", "aggregation.delta=1.0"], "delta"),
    (["train.n_dis=0"], "train.n_dis"),
    (["optimizer.lookahead.alpha=1.5"], "lookahead.alpha"),
    (["dataset=ring8"], "model=mlp"),
    (["dataset.resolution=20"], "dataset.resolution=20"),
    (["loss.real_label=0"], "real_label"),
    (["loss=hinge", "loss.real_label=0.9"], "one-sided label smoothing"),
    (["regularizer.gp=wgan_gp", "model.d_norm=batch"], "regularizer.gp=wgan_gp"),
    (["aggregation=mgd", "aggregation.solver=exact", "discriminators.count=16"], "aggregation.solver=exact"),
    (["regularizer.unroll.lr=-1"], "regularizer.unroll.lr"),
    (["optimizer.svre.noise_set=-5"], "optimizer.svre.noise_set"),
])
def test_impossible_values_are_rejected(override, needle):
    cfg = compose(override)
    with pytest.raises(ConfigError, match=None) as err:
        validate(cfg)
    assert needle in str(err.value)


def test_cli_unknown_group_option_lists_valid_options(tmp_path):
    r = cli("train", "dataset=cifr10", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode != 0
    assert "cifr10" in r.stderr and "cifar10" in r.stderr and "mnist" in r.stderr
    assert not (tmp_path / "run").exists()


def test_cli_unknown_key_and_wrong_type(tmp_path):
    r = cli("train", "train.iteratons=5", f"hydra.run.dir={tmp_path}/a")
    assert r.returncode != 0 and "iteratons" in r.stderr
    r = cli("train", "train.iterations=many", f"hydra.run.dir={tmp_path}/b")
    assert r.returncode != 0 and "many" in r.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_impossible_value_one_line_and_no_run_dir(tmp_path):
    r = cli("train", "discriminators.count=0", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("gan-bench: error: discriminators.count=0")
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_cli_batch_larger_than_dataset(tmp_path):
    r = cli("train", "train.batch_size=5000", "model.g_width=8", "model.d_width=8",
            f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 2
    assert "train.batch_size=5000 is larger than dataset=digits (1797 examples)" in r.stderr
    assert not (tmp_path / "run").exists()


def test_help_lists_commands_and_groups():
    r = cli("--help")
    assert r.returncode == 0
    for c in ("train", "eval", "fid", "weights", "report"):
        assert c in r.stdout
    r = cli("train", "--help")
    assert r.returncode == 0
    for g in ("dataset:", "aggregation:", "optimizer:", "hv", "cifar10_64", "experiment:"):
        assert g in r.stdout


def test_errors_found_while_building_are_config_errors(tmp_path):
    import numpy as np
    from PIL import Image

    from gan_bench.errors import ConfigError
    from gan_bench.train import Run

    with pytest.raises(ConfigError, match="aggregation"):
        Run(compose(["aggregation=gman", "aggregation.lam=-1"]), None)
    for i in range(4):
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(ConfigError, match="optimizer.update=svre needs a finite sum held in memory"):
        Run(compose(["optimizer=svre", "dataset=image_folder", f"dataset.root={tmp_path}", "dataset.resolution=8",
                     "train.batch_size=2"]), None)
