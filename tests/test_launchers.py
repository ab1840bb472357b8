"""Sweeps through Hydra's launchers and sweepers (pip install 'gan-bench[launchers,tune]'): jobs in parallel with
joblib, jobs as separate processes with submitit (the SLURM launcher's local twin), a job stopped by a signal and
continued by relaunching the same command (preemption), a failing job that does not stop the others, and an Optuna
search against a metric the runs return."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from conftest import cli
from test_faults import RING, _start, _status
from test_train import _assert_same, _weights

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

SWEEP = ["aggregation=hv", "discriminators.count=2", "train.iterations=4", *RING]


def _finished(job: Path) -> bool:
    return (job / "status.json").is_file() and _status(job)["state"] == "finished"


def test_joblib_runs_jobs_in_parallel_a_failing_one_does_not_stop_the_others(tmp_path):
    sweep = tmp_path / "sweep"
    r = cli("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "aggregation.delta=0.5,1.5,2.0",
            *SWEEP, f"hydra.sweep.dir={sweep}")
    assert r.returncode == 1, r.stderr[-3000:]
    jobs = [sweep / f"{i}_aggregation.delta={d}" for i, d in enumerate(("0.5", "1.5", "2.0"))]  # named in the workers
    assert "1 job(s) of the sweep failed" in r.stderr and f"{jobs[0]}: failed: aggregation.delta=0.5 is impossible" \
        in r.stderr, r.stderr[-3000:]
    assert _finished(jobs[1]) and _finished(jobs[2]) and _status(jobs[0])["state"] == "failed"
    pids = {_status(job)["pid"] for job in jobs}
    assert len(pids) >= 2  # the jobs ran in worker processes, not in the launching one
    r = cli("report", str(sweep), "--no-files")
    assert r.returncode == 0 and "aggregation.delta" in r.stdout and "failed" in r.stdout + r.stderr


def test_submitit_local_runs_each_job_as_its_own_process_and_report_tables_them(tmp_path):
    sweep = tmp_path / "sweep"
    r = cli("train", "-m", "hydra/launcher=submitit_local", "aggregation.delta=1.5,2.0", *SWEEP,
            f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert _finished(sweep / "0_aggregation.delta=1.5") and _finished(sweep / "1_aggregation.delta=2.0")
    assert list((sweep / ".submitit").rglob("*_result.pkl"))  # submitit's own record of each job
    r = cli("report", str(sweep), "--no-files", "--format", "csv")
    assert r.returncode == 0 and r.stdout.count("\n") >= 3, r.stdout + r.stderr


def test_a_preempted_job_continues_when_the_same_command_is_launched_again(tmp_path):
    """The job is stopped by SIGTERM (what SLURM sends on preemption) mid-run; relaunching the very same sweep command
    continues its folder from the checkpoint written at the signal, and the result equals an uninterrupted run."""
    sweep, args = tmp_path / "sweep", [*RING, "train.checkpoint_every=1000", "optimizer=extragradient"]
    command = ["-m", "hydra/launcher=submitit_local", "train.iterations=40", *args, f"hydra.sweep.dir={sweep}"]
    proc = _start(*command, env={"GAN_BENCH_FAULT": "wait_for_signal@5"})  # the job waits there for the signal
    job = sweep / "0"
    deadline = time.time() + 120
    while time.time() < deadline and not ((job / "status.json").is_file() and _status(job)["iteration"] >= 0):
        time.sleep(0.05)
    import os

    os.kill(_status(job)["pid"], signal.SIGTERM)
    proc.communicate(timeout=300)
    status = _status(job)
    assert status["state"] == "interrupted" and status["checkpoint_iteration"] == status["iteration"] < 40
    r = cli("train", *command)  # the same command again
    assert r.returncode == 0, r.stderr[-3000:]
    assert "holds this job's unfinished run: continuing it" in r.stdout + r.stderr + _job_logs(sweep)
    assert _finished(job)
    r = cli("train", "train.iterations=40", *args, f"hydra.run.dir={tmp_path / 'straight'}")
    assert r.returncode == 0, r.stderr[-2000:]
    _assert_same(_weights(job), _weights(tmp_path / "straight"))
    # a finished job is not run again: test_a_relaunch_never_continues_a_different_run


def test_a_relaunch_never_continues_a_different_run(tmp_path):
    """Relaunched with one swept value changed, that job gets a folder of its own (named by its value) and the job
    whose run finished is not run again; neither touches what is there. (A folder holding a run of another config —
    a shared key changed — is refused: test_cli's test_a_sweep_job_holding_another_config_is_one_line...)"""
    sweep = tmp_path / "sweep"
    r = cli("train", "-m", "aggregation.delta=1.5,2.0", *SWEEP, f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-2000:]
    first = ["0_aggregation.delta=1.5", "1_aggregation.delta=2.0"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == first
    before = {j: (sweep / j / "checkpoints" / "last.pt").read_bytes() for j in first}
    metrics = (sweep / first[1] / "metrics.json").read_bytes()
    r = cli("train", "-m", "aggregation.delta=2.5,2.0", *SWEEP, f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{sweep / first[1]} already finished: not run again" in r.stdout
    assert _finished(sweep / "0_aggregation.delta=2.5")
    assert {j: (sweep / j / "checkpoints" / "last.pt").read_bytes() for j in first} == before
    assert (sweep / first[1] / "metrics.json").read_bytes() == metrics
    assert _status(sweep / first[0])["state"] == _status(sweep / first[1])["state"] == "finished"  # records left alone


def _job_logs(sweep: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sweep.rglob("*.log")) + "".join(
        p.read_text(errors="replace") for p in (sweep / ".submitit").rglob("*.out"))


@pytest.mark.skipif(pytest.importorskip("hydra_plugins.hydra_optuna_sweeper") is None, reason="optuna sweeper")
def test_optuna_searches_against_the_objective_the_runs_return(tmp_path):
    sweep = tmp_path / "search"
    r = cli("train", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.direction=maximize",
            "hydra.sweeper.sampler.seed=1", "aggregation.delta=interval(1.1,3.0)", "train.objective=high_quality",
            "eval.metrics=[modes]", "eval.n_samples=256", "eval.generators=[raw]", *SWEEP, f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 4
    quality = {}  # each trial's delta -> the best fraction of high-quality samples over its evaluations
    for i, job in enumerate(jobs):
        m = json.loads((job / "metrics.json").read_text())
        quality[m["config"]["aggregation"]["delta"]] = max(e["high_quality"] for e in m["eval"])
        assert job.name == f"{i}_aggregation.delta={m['config']['aggregation']['delta']}"  # the sampled value
    assert len(quality) == 4 and all(1.1 <= d <= 3.0 for d in quality)
    result = (sweep / "optimization_results.yaml").read_text()
    assert f"best_value: {max(quality.values())}" in result
    best = max(quality, key=quality.get)
    assert f"aggregation.delta: {best}" in result
