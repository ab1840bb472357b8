"""A sweep's job folders are named by the job number and the overrides that differ between its jobs
(gan_bench/job_names.py): known names for known command lines, the resolver as Hydra resolves ``hydra.sweep.subdir``,
the shared keys ``gan-bench train -m`` hands Hydra, and the folder names the report expects for launched jobs.
Real sweeps: tests/test_report_sweep.py (report), test_launchers.py (joblib workers, submitit), test_loggers.py
(TensorBoard and MLflow run names)."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf, open_dict

from gan_bench.job_names import MAX_LABEL, SUBDIR, job_dir, job_label, recorded_shared_keys, shared_keys


def test_the_keys_every_job_shares_are_the_ones_not_swept():
    args = ["-m", "aggregation=avg,hv", "train.seed=range(1,4)", "train.iterations=300", "+experiment=cifar_hv24",
            "model/generator=dcgan", "loss=glob(*)", "hydra.sweep.dir=x", "hydra/launcher=joblib"]
    # no + (Hydra's exclude_keys match the key), a group with its /, Hydra's own keys left out
    assert shared_keys(args) == ["train.iterations", "experiment", "model/generator"]


@pytest.mark.parametrize("overrides,exclude,expected", [
    (["aggregation=hv", "train.seed=2", "train.iterations=300"], ["train.iterations"], "aggregation=hv,train.seed=2"),
    (["train.seed=2", "aggregation=hv"], [], "train.seed=2,aggregation=hv"),  # command-line order, not sorted
    (["+model.g_width=8", "model/generator=resnet"], [], "model.g_width=8,model.generator=resnet"),
    # values as Hydra's sweeper writes them into the jobs' overrides (1e-4 as 0.0001)
    (["logger=[tensorboard,csv]", "optimizer.lr=1e-4"], [], "logger=[tensorboard,csv],optimizer.lr=0.0001"),
    (["dataset.root=/data/my cifar"], [], "dataset.root=_data_my_cifar"),  # no / nor space in a folder name
    (["~stabilizers.unrolled", "hydra.job.num=3"], [], "~stabilizers.unrolled"),
    (["train.iterations=300"], ["train.iterations"], ""),
])
def test_job_label(overrides, exclude, expected):
    assert job_label(overrides, exclude) == expected


def test_a_long_label_is_cut_and_the_number_keeps_folders_apart():
    overrides = [f"optimizer.lr{i}=0.000123456789" for i in range(20)]
    a, b = job_dir(3, overrides), job_dir(4, overrides)
    assert len(job_label(overrides)) == MAX_LABEL and a.endswith("...") and a != b
    assert a.startswith("3_optimizer.lr0=0.000123456789,optimizer.lr1=")
    assert job_dir(7, ["train.iterations=3"], ["train.iterations"]) == "7"  # nothing differs: the number alone


def _job_config(num: int, task: list[str], exclude: list[str]):
    """The config of job ``num`` of a sweep, as a launcher hands it to Hydra's run_job: its number and overrides."""
    cfg = compose_hydra([*task, f"hydra.job.config.override_dirname.exclude_keys=[{','.join(exclude)}]"])
    with open_dict(cfg):
        cfg.hydra.job.num = num
        cfg.hydra.overrides.task = task
    return cfg


def test_hydra_resolves_the_default_subdir_through_the_resolver():
    cfg = _job_config(5, ["aggregation=hv", "train.seed=2", "train.iterations=30"], ["train.iterations"])
    assert OmegaConf.select(cfg, "hydra.sweep.subdir") == "5_aggregation=hv,train.seed=2"
    assert cfg.hydra.job.override_dirname == "aggregation=hv,train.seed=2"  # Hydra's own name agrees
    assert OmegaConf.to_container(cfg.hydra.sweep)["subdir"] == SUBDIR  # the default of conf/config.yaml
    with open_dict(cfg):
        cfg.hydra.job.num = "???"  # not a sweep's job (--cfg hydra --resolve): shown as Hydra shows ${hydra.job.num}
    assert "subdir: ???" in OmegaConf.to_yaml(cfg.hydra.sweep, resolve=True)


def test_the_sweep_command_hands_hydra_the_shared_keys_unless_you_did():
    from gan_bench.launch import _shared

    key = "hydra.job.config.override_dirname.exclude_keys"
    assert _shared(["-m", "aggregation=avg,hv", "train.iterations=3", "model/generator=dcgan"]) == [
        f"{key}=['train.iterations','model/generator']"]
    assert _shared(["-m", "aggregation=avg,hv"]) == []
    assert _shared(["-m", "aggregation=avg,hv", "train.iterations=3", f"{key}=[]"]) == []  # yours stands
    assert _shared(["-m", "aggregation=[avg,"]) == []  # Hydra reports the malformed override itself
    # the override parses back as Hydra's list of those keys
    cfg = compose_hydra([*_shared(["-m", "train.iterations=3", "model/generator=dcgan"])])
    assert list(cfg.hydra.job.config.override_dirname.exclude_keys) == ["train.iterations", "model/generator"]


def compose_hydra(overrides: list[str]):
    from gan_bench.launch import compose_config

    return compose_config(overrides, return_hydra_config=True)


def test_the_report_expects_the_folders_hydra_made():
    from gan_bench.report.collect import expand_sweep, job_folder_names

    launched = expand_sweep(["aggregation=avg,hv", "train.seed=1,2", "train.iterations=3"])
    assert job_folder_names(launched, SUBDIR, ["train.iterations"]) == [
        "0_aggregation=avg,train.seed=1", "1_aggregation=avg,train.seed=2", "2_aggregation=hv,train.seed=1",
        "3_aggregation=hv,train.seed=2"]
    assert job_folder_names(launched, "${hydra.job.num}", []) == ["0", "1", "2", "3"]
    assert job_folder_names(launched, None, []) == ["0", "1", "2", "3"]  # a multirun.yaml without the key
    assert job_folder_names(launched, "${hydra.job.override_dirname}", []) is None  # a pattern of yours
    hydra = {"job": {"config": {"override_dirname": {"exclude_keys": ["train.iterations"]}}}}
    assert recorded_shared_keys(hydra) == ["train.iterations"]
    assert recorded_shared_keys({"job": None}) == recorded_shared_keys(None) == []


@pytest.mark.parametrize("value", ["/tmp/sweep/0_aggregation=hv,train.seed=1", "my runs/0_logger=[csv,wandb]",
                                   "it's", "ends\\", "a\\'b", "C:\\runs\\"])
def test_a_folder_gan_bench_hands_hydra_is_quoted_and_reads_back_whole(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from gan_bench.launch import quoted

    (override,) = OverridesParser.create().parse_overrides([f"hydra.run.dir={quoted(value)}"])
    assert override.value() == value


def test_an_unquoted_value_holding_equals_is_one_line_naming_the_override(tmp_path):
    """As a user types it, in a real process: exit 2, one line naming the override and the quoting, nothing made."""
    from conftest import cli

    run = tmp_path / "0_aggregation=hv,train.seed=1"
    r = cli("train", f"hydra.run.dir={run}")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"gan-bench: error: cannot read the override hydra.run.dir={run}: mismatched input "
                                """'=' expecting <EOF> (a value holding =, a comma, spaces or brackets needs quotes: """
                                """'KEY="VALUE"')""")
    assert not run.exists() and list(tmp_path.iterdir()) == []


def test_the_resume_command_a_run_prints_pastes_into_a_shell():
    import shlex
    from pathlib import Path

    from gan_bench.status import resume_command

    plain = Path("/runs/sweep/0_aggregation=hv,train.seed=1")
    assert resume_command(plain) == f"gan-bench train resume={plain}"  # = and , are plain words to a shell
    odd = Path("/runs/sweep/0_logger=[csv,wandb]")
    assert resume_command(odd) == f"gan-bench train resume='{odd}'"  # brackets would be a glob
    assert shlex.split(resume_command(odd))[-1] == f"resume={odd}"
