"""The entrance: ``gan-bench`` is one argparse parser with a sub-command each, ``train`` a Hydra app.

Real processes where the process is the point (exit status, the stream a line goes to, Hydra's flags, the shell's
completion protocol), in-process elsewhere.
"""
from __future__ import annotations

import logging
import os
import shlex
import stat
import subprocess
import sys
from importlib.metadata import version

import pytest

from conftest import REPO, cli, cli_here

RING = ["dataset=ring8", "model=mlp", "model.generator.width=8", "model.discriminator.width=8", "model.z_dim=2",
        "train.batch_size=16", "dataset.n_points=64", "train.progress=off", "train.measure_flops=false"]
#: every argparse sub-command, with a word its --help must show (its options)
HELPS = {("eval",): "--out", ("fid",): "--save-stats", ("weights",): "--no-download", ("report",): "--until",
         ("classifier",): "train", ("classifier", "train"): "classifier.epochs"}


def test_version_is_the_installed_distribution():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"gan-bench {version('gan-bench')}", r


def test_top_level_help_lists_every_command():
    from gan_bench.cli import COMMANDS

    r = cli("--help")
    assert r.returncode == 0
    flat = " ".join(r.stdout.split())
    for name, (text, _, _) in COMMANDS.items():
        assert f"{name} {' '.join(text.split())[:30]}" in flat, name  # each command with its line
    assert "examples:" in r.stdout and "-sc install=bash" in r.stdout


@pytest.mark.parametrize("command", list(HELPS), ids=" ".join)
def test_every_sub_command_help_says_what_it_does_its_options_and_an_example(command):
    r = cli(*command, "--help", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: gan-bench {' '.join(command)}"), r.stdout[:200]
    assert HELPS[command] in r.stdout
    assert "example" in r.stdout.lower() and "Traceback" not in r.stderr
    description = r.stdout.split("\n\n")[1]
    assert len(description.split()) >= 5, description  # a sentence on what the command does


@pytest.mark.parametrize("args,needle", [
    (["fid"], "gan-bench fid: error: the following arguments are required: PATH"),
    (["frobnicate"], "gan-bench: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["report", "runs/", "--bogus"], "gan-bench report: error: unrecognized arguments: --bogus"),
    (["classifier", "fit"], "gan-bench classifier: error: argument ACTION: invalid choice: 'fit'"),
    (["eval"], "gan-bench eval: error: the following arguments are required"),
])
def test_a_usage_error_is_one_line_and_exit_2(args, needle):
    r = cli(*args, timeout=60)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(needle), r.stderr
    assert lines[0].endswith("--help)")


def test_train_help_is_fast_and_lists_groups_options_descriptions_and_metrics():
    from gan_bench.metrics.registry import _REGISTRY
    from gan_bench.train_help import metrics

    def registered_metrics():  # gan-bench's own (test modules register plug-ins of theirs in this process)
        return [n for n, cls in _REGISTRY.items() if cls.__module__.startswith("gan_bench.")]

    r = cli("train", "--help", timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("usage: gan-bench train")
    for group in ("dataset:", "aggregation:", "loss:", "optimizer:", "optimizer/rule:", "optimizer/base:",
                  "model:", "model/discriminator:", "discriminators/projection:"):
        assert f"\n{group}\n" in out, group
    groups = out.split("== Config groups")[1].split("== Paper presets")[0]
    assert "  hv " in groups and "hypervolume" in groups.lower()  # an option with its one-line description
    assert "digits*" in groups  # the default marked
    assert "schema" not in groups and "hydra/" not in groups
    assert "cifar_hv24" in out.split("== Paper presets")[1]
    # the metric names, found without importing torch, are the registry's
    assert set(metrics()) == set(registered_metrics())
    listed = out.split("== Metrics")[1].split("== Keys")[0]
    for name in registered_metrics():
        assert f"  {name} " in listed, name
    for hydra_flag in ("--cfg", "--info", "-m", "-sc install=bash", "--hydra-help"):
        assert hydra_flag in out


def test_train_help_imports_neither_torch_nor_hydra():
    """Why it answers at once (scripts/bench_cli.py times it): it reads conf/ and the metric files as text."""
    code = ("import sys, contextlib, io\nfrom gan_bench.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['train', '--help']) == 0\n"
            "print(sorted(m for m in ('torch', 'hydra', 'omegaconf', 'numpy') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and r.stdout.strip() == "[]", r


def test_train_help_lists_every_option_of_every_group():
    """Each group's block holds exactly the YAML files of its conf/ folder (moved here from test_config.py, where it
    asserted the former one-line-per-group form)."""
    r = cli("train", "--help", timeout=60)
    blocks = r.stdout.split("== Config groups")[1].split("\n== ")[0].split("\n")[1:]
    listed, group = {}, None
    for line in blocks:
        if line and not line.startswith(" "):
            group = line.rstrip(":")
            listed[group] = set()
        elif line.strip() and group:
            listed[group].add(line.split()[0].rstrip("*"))
    conf = REPO / "conf"
    expected = {str(d.relative_to(conf)): {f.stem for f in d.glob("*.yaml")} for d in conf.rglob("*")
                if d.is_dir() and any(d.glob("*.yaml")) and d.name != "experiment" and "hydra" not in d.parts}
    assert listed == expected


def test_train_help_marks_options_of_the_users_conf(tmp_path):
    (tmp_path / "conf" / "loss").mkdir(parents=True)
    (tmp_path / "conf" / "loss" / "mine.yaml").write_text("# my own loss\n_target_: my.Loss\n")
    r = cli("train", "--help", cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and "mine (your conf/)" in r.stdout and "my own loss" in r.stdout


def test_hydra_flags_work_as_in_any_hydra_app(tmp_path):
    r = cli("train", "--cfg", "job", "train.iterations=7", "aggregation=hv", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "iterations: 7" in r.stdout and "Hypervolume" in r.stdout
    assert not (tmp_path / "outputs").exists()  # --cfg prints, it runs nothing
    r = cli("train", "--info", "defaults", cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "Defaults List" in r.stdout and "aggregation/avg" in r.stdout, r.stderr
    r = cli("train", "--hydra-help", cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "Hydra (" in r.stdout


def test_experimental_rerun_which_unpickles_is_refused_in_one_line(tmp_path):
    (tmp_path / "config.pickle").write_bytes(b"not read")
    r = cli("train", "--experimental-rerun", str(tmp_path / "config.pickle"), timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "pickled" in r.stderr, r.stderr


def _complete(tmp_path, *lines: str) -> list[set[str]]:
    """What bash's Tab offers after each line, the way bash asks: Hydra's installed function, called with the
    COMP_* variables bash sets, through an executable named gan-bench (as the installed entry point is)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "gan-bench"
    exe.write_text(f"#!{sys.executable}\nimport sys\nfrom gan_bench.cli import main\nsys.exit(main())\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    script = ['eval "$(gan-bench train -sc install=bash)"']
    for line in lines:
        words = line.split()
        cword = len(words) if line.endswith(" ") else len(words) - 1
        script += [f"COMP_LINE={shlex.quote(line)}; COMP_POINT={len(line)}; COMP_CWORD={cword}",
                   "hydra_bash_completion", 'echo "REPLY: ${COMPREPLY[*]}"']
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr
    replies = [ln[len("REPLY: "):].split() for ln in r.stdout.splitlines() if ln.startswith("REPLY: ")]
    assert len(replies) == len(lines), r.stdout + r.stderr
    return [set(x) for x in replies]


def test_tab_completion_completes_commands_groups_options_and_keys(tmp_path):
    commands, group, subgroups, options, keys = _complete(
        tmp_path, "gan-bench tr", "gan-bench train agg", "gan-bench train model/", "gan-bench train aggregation=",
        "gan-bench train train.it")
    assert commands == {"train"}
    assert group == {"aggregation=", "aggregation."}  # the group, and the section's keys
    assert subgroups == {"model/discriminator=", "model/generator="}
    assert {"aggregation=avg", "aggregation=hv", "aggregation=mgd"} <= options
    assert keys == {"train.iterations="}


def test_a_sweep_job_holding_another_config_is_one_line_and_the_sweep_goes_on(tmp_path):
    """Relaunching a sweep with a changed override: each job folder holds a run of another config; each job is
    refused in one line (no Hydra 'Error executing job', no traceback) and the command names them at the end."""
    sweep = tmp_path / "sweep"
    first = cli("train", "-m", "train.iterations=2", *RING, "train.seed=1,2", f"hydra.sweep.dir={sweep}")
    assert first.returncode == 0, first.stderr[-2000:]
    before = (sweep / "0_train.seed=1" / "metrics.json").read_bytes()  # the shared keys (loss too) name no folder
    r = cli("train", "-m", "train.iterations=2", *RING, "train.seed=1,2", "loss=hinge", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 1, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "Error executing job" not in r.stderr, r.stderr
    refusals = [ln for ln in r.stderr.splitlines() if ln.startswith("gan-bench: error:")]
    assert len(refusals) == 2 and all("loss" in ln for ln in refusals), r.stderr
    assert "2 job(s) of the sweep failed" in r.stderr
    assert (sweep / "0_train.seed=1" / "metrics.json").read_bytes() == before


def test_resume_accepts_the_training_command_repeated_and_refuses_a_real_change(tmp_path, capsys):
    from gan_bench.api import compose_config, train

    run = tmp_path / "run"
    train(compose_config([*RING, "train.iterations=2", "train.seed=0"]), run)
    r = cli_here(capsys, "train", *RING, "train.seed=0", "train.iterations=3", f"resume={run}")
    assert r.returncode == 0, r.stderr
    r = cli_here(capsys, "train", *RING, "train.seed=1", "train.iterations=4", f"resume={run}")
    assert r.returncode == 2 and "cannot change train.seed when resuming" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_strict_check_runs_once_per_launch(tmp_path, capsys, monkeypatch):
    import gan_bench.config as config
    import gan_bench.run as run_module

    calls = []
    real = config.check_config

    def counted(cfg):
        calls.append(1)
        return real(cfg)
    monkeypatch.setattr(config, "check_config", counted)
    monkeypatch.setattr(run_module, "check_config", counted)
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        r = cli_here(capsys, "train", *RING, "train.iterations=2", f"hydra.run.dir={tmp_path / 'run'}")
    finally:  # Hydra's job logging put handlers on this process's root logger, on capsys's stream: take them off
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
            handler.close()
    assert r.returncode == 0, r.stderr
    assert len(calls) == 1
