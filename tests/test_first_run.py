"""A number on the first run: the default command evaluates the digits with classifier-FID (its LeNet trained once
into the cache when missing) and prints it, with the metric's scale (real images, noise) measured beside it."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from conftest import cli


def test_the_default_run_ends_with_a_measured_number_and_its_scale(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}  # no classifier yet: the LeNet is trained once, here
    run = tmp_path / "run"
    r = cli("train", "train.iterations=40", "train.log_every=20", f"hydra.run.dir={run}", "eval.n_samples=500",
            f"eval.cache_dir={tmp_path / 'stats'}", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "training the lenet of dataset=digits once" in r.stdout
    assert (tmp_path / "cache" / "gan_bench" / "classifiers" / "digits_16px_lenet.pt").is_file()
    line = re.search(r"eval it 40  G raw  fid_classifier=(\S+) \(real data (\S+), noise (\S+)\)  \((\S+) s\)",
                     r.stdout)
    assert line, r.stdout
    value, real, noise = (float(x) for x in line.groups()[:3])
    assert real < value and real < noise  # real images score best; 40 iterations are far from them
    record = json.loads((run / "metrics.json").read_text())
    assert record["eval"][0]["fid_classifier"] == pytest.approx(value, rel=1e-3)
    assert record["reference_values"]["fid_classifier"]["real"] == pytest.approx(real, rel=1e-3)
    assert record["eval"][0]["protocol"]["fid_classifier"]["n_fake"] == 500
    assert "done: 40 iterations" in r.stdout.splitlines()[-1] and "best fid_classifier=" in r.stdout
    assert line.group(0) in (run / "train.log").read_text()  # train.log holds the console's lines
    again = cli("train", "train.iterations=2", f"hydra.run.dir={tmp_path / 'run2'}", "eval.n_samples=500",
                f"eval.cache_dir={tmp_path / 'stats'}", cwd=tmp_path, env=env)
    assert again.returncode == 0 and "training the lenet" not in again.stdout  # found in the cache
    assert f"(real data {line.group(2)}, noise {line.group(3)})" in again.stdout  # the scale, cached per protocol


def test_a_missing_classifier_names_the_command_that_makes_it(tmp_path, monkeypatch):
    from gan_bench.metrics.classifier_files import find_classifier
    from gan_bench.metrics.errors import MetricsError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(MetricsError, match=r"make it with gan-bench classifier train dataset=cifar10 \(it is then "
                                           r"found at classifiers/cifar10_32px_resnet18.pt\)"):
        find_classifier(SimpleNamespace(name="cifar10", channels=3, resolution=32))
