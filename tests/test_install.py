"""conf/ is found from a source checkout and from a non-editable install alike."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_conf_from_source_checkout():
    from gan_bench.launch import conf_dir

    assert Path(conf_dir()) == REPO / "conf"


def test_conf_from_non_editable_install(tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(REPO)], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PIP_NO_INPUT="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (target / "gan_bench" / "conf" / "config.yaml").is_file()
    assert (target / "gan_bench" / "conf" / "experiment" / "cifar_hv24.yaml").is_file()
    # every module of the source is installed (a package left out of pyproject's list breaks `pip install .` alone)
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "gan_bench").rglob("*.py")}
    installed = {p.relative_to(target).as_posix() for p in (target / "gan_bench").rglob("*.py")
                 if "conf" not in p.relative_to(target / "gan_bench").parts[:1]}
    assert source - installed == set()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    code = ("import gan_bench.cli as c, gan_bench.launch as la, sys; print(c.__file__); print(la.conf_dir()); "
            "sys.exit(c.main(['train', '--cfg', 'job', '+experiment=cifar_hv24']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert lines[0].startswith(str(target)) and lines[1] == "pkg://gan_bench.conf"
    assert "count: 24" in r.stdout and "name: cifar10_64" in r.stdout
