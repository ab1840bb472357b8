"""Bring your own component: a user's discriminator class (in a module outside gan-bench, on PYTHONPATH) trains through
the CLI from a YAML file in the user's own conf/ or from a _target_ override; a class that breaks the ensemble's
interface gets one line naming what is wrong; a metric registered outside gan-bench is an eval.metrics option."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY, cli, cli_here, compose
from gan_bench.config import check_config
from gan_bench.errors import ConfigError

PLUGINS = Path(__file__).resolve().parent / "plugins"
ENV = {"PYTHONPATH": f"{REPO}{os.pathsep}{PLUGINS}"}
RUN = [*(o for o in TINY if not o.startswith("model.discriminator.")), "discriminators.count=3", "aggregation=hv",
       "train.iterations=3"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A researcher's project folder: conf/model/discriminator/tiny_d.yaml naming their class."""
    option = tmp_path / "conf" / "model" / "discriminator" / "tiny_d.yaml"
    option.parent.mkdir(parents=True)
    option.write_text("_target_: my_gan_parts.TinyD\nhidden: 24\n")
    return tmp_path


def _here(project: Path, monkeypatch, capsys, *args: str):
    """A refusal of the config check, from the researcher's project folder with their module importable, in this
    process (as ``cli(..., cwd=project, env=ENV)`` would run it; what trains or builds the ensemble runs as a real
    process)."""
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(PLUGINS))
    return cli_here(capsys, *args)


def _user_d_params(run_dir: Path) -> dict[str, tuple]:
    sd = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return {k: tuple(v.shape) for k, v in sd["D"].items()}


def test_own_discriminator_from_a_yaml_in_the_project_conf_trains_with_k3_hv(project):
    r = cli("train", "model/discriminator=tiny_d", *RUN, "hydra.run.dir=run", cwd=project, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    shapes = _user_d_params(project / "run")
    assert shapes["stacked.body__1__weight"] == (3, 24, 64) and shapes["stacked.head__weight"] == (3, 1, 24)
    config = (project / "run" / ".hydra" / "config.yaml").read_text()
    assert "_target_: my_gan_parts.TinyD" in config


def test_own_discriminator_from_a_target_override(tmp_path):
    r = cli("train", "model.discriminator._target_=my_gan_parts.TinyD", "+model.discriminator.hidden=16", *RUN,
            f"hydra.run.dir={tmp_path}/run", env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _user_d_params(tmp_path / "run")["stacked.head__weight"] == (3, 1, 16)


@pytest.mark.parametrize("cls,needle", [
    ("NoFeaturesD", "discriminator NoFeaturesD must define forward(x, return_features=False)"),
    ("BranchingD", "discriminator BranchingD cannot run as a vectorised ensemble (RuntimeError: vmap: It looks like "
                   "you're calling .item()"),
    ("TwoLogitsD", "discriminator TwoLogitsD must return one logit per sample, shape [B]; for a batch of 2 it "
                   "returned shape (2, 2)"),
])
def test_a_class_that_breaks_the_interface_gets_one_line_naming_it(project, cls, needle):
    (project / "conf" / "model" / "discriminator" / "bad.yaml").write_text(f"_target_: my_gan_parts.{cls}\n")
    r = cli("train", "model/discriminator=bad", *RUN, "hydra.run.dir=run", cwd=project, env=ENV)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not (project / "run").exists()  # refused before anything was written


def test_keys_of_a_user_class_are_checked_against_its_signature(project, monkeypatch, capsys):
    r = _here(project, monkeypatch, capsys, "train", "model/discriminator=tiny_d", "+model.discriminator.hiden=8", *RUN,
              "hydra.run.dir=run")
    assert r.returncode == 2
    assert "model.discriminator.hiden does not apply to model.discriminator._target_=my_gan_parts.TinyD " \
           "(its keys: hidden)" in r.stderr
    r = _here(project, monkeypatch, capsys, "train", "model.discriminator._target_=my_gan_parts.Nope", *RUN,
              "hydra.run.dir=run")
    assert r.returncode == 2 and "model.discriminator._target_=my_gan_parts.Nope cannot be imported " \
                                  "(my_gan_parts has no attribute 'Nope')" in r.stderr


def test_a_metric_registered_outside_gan_bench_is_an_eval_metrics_option():
    from gan_bench.metrics.extractors.samples import RawSamples
    from gan_bench.metrics.registry import POINTS, Metric, register_metric, registered_metrics

    cfg = compose(["dataset=ring8", "model=mlp", "eval.metrics=[spread]"])
    with pytest.raises(ConfigError, match="eval.metrics: unknown metric 'spread'"):
        check_config(cfg)

    @register_metric
    class Spread(Metric):
        """The mean distance of the samples to the origin."""

        name, keys, data = "spread", ("spread",), POINTS
        directions = {"spread": None}
        extractor, output = RawSamples, "samples"

    assert "spread" in registered_metrics()
    check_config(cfg)  # now an option


def test_plugins_are_imported_before_the_config_is_checked(tmp_path):
    (tmp_path / "my_metrics.py").write_text(
        "from gan_bench.metrics.extractors.samples import RawSamples\n"
        "from gan_bench.metrics.registry import POINTS, Metric, register_metric\n\n"
        "@register_metric\nclass Spread2(Metric):\n    name, keys, data = 'spread2', ('spread2',), POINTS\n"
        "    extractor, output = RawSamples, 'samples'\n    directions = {'spread2': None}\n")
    cfg = compose(["dataset=ring8", "model=mlp", "eval.metrics=[spread2]", "plugins=[my_metrics]"])
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        check_config(cfg)
    finally:
        sys.path.remove(str(tmp_path))
    with pytest.raises(ConfigError, match="plugins: cannot import no_such_module"):
        check_config(compose(["plugins=[no_such_module]"]))
