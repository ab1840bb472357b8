"""gan-bench from Python: README's "From Python" snippet is the code run here, as it stands in the README."""
from __future__ import annotations

import re

import pytest

from conftest import REPO


def _snippet() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## From Python", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_snippet_trains_and_returns_the_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_snippet(), "README.md: From Python", "exec"), scope)  # the README's own code
    result, cfg = scope["result"], scope["cfg"]
    assert result["iterations"] == cfg.train.iterations == 200
    assert result["best"]["modes_covered"]["value"] == scope["best"]
    assert [e["iteration"] for e in scope["evals"]] == [100, 200]  # the EMA G is not warmed up yet: raw only
    assert all("protocol" in e for e in scope["evals"])
    assert (tmp_path / "runs" / "ring8" / "checkpoints" / "last.pt").is_file()


def test_compose_config_refuses_a_bad_key_and_train_a_used_folder(tmp_path):
    from gan_bench.api import compose_config, train
    from gan_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="train.nope is not a config key"):
        compose_config(["train.nope=1"])
    (tmp_path / "metrics.json").write_text("{}")
    cfg = compose_config(["dataset=ring8", "model=mlp", "train.iterations=2"])
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg, tmp_path)
    assert (tmp_path / "metrics.json").read_text() == "{}"
