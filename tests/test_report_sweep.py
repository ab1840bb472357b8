"""gan-bench report on a real sweep: report folder, figures, job statuses, HParams; every expected number is computed
from the runs' own metrics.json files."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import cli
from gan_bench.cli import main as cli_main
from gan_bench.errors import GanBenchError
from gan_bench.report import report_main
from gan_bench.report.collect import expand_sweep

# -- the training overrides of the sweep, all in one place (rename config keys here) ----------------------------------
SWEPT = ["aggregation=avg,hv", "train.seed=1,2"]  # 2 x 2 jobs: 0 avg/1, 1 avg/2, 2 hv/1, 3 hv/2
#: the jobs' folders: the job number and the overrides that differ between jobs (TRAIN's shared keys name none)
JOBS = ["0_aggregation=avg,train.seed=1", "1_aggregation=avg,train.seed=2", "2_aggregation=hv,train.seed=1",
        "3_aggregation=hv,train.seed=2"]
K = 2
# a ring of radius 0.5 with std 0.1: after 8 iterations the runs' modes and quality are not all 0 and vary over time
TRAIN = ["dataset=ring8", "dataset.scale=0.5", "dataset.std=0.1", "model=mlp", f"discriminators.count={K}",
         "train.iterations=8", "eval.every=4", "eval.metrics=[modes]", "eval.n_samples=200", "eval.generators=[raw]",
         "dataset.n_points=512", "model.generator.width=16", "model.discriminator.width=16", "model.z_dim=4",
         "train.batch_size=32", "train.log_every=2", "train.sample_every=1000", "train.checkpoint_every=1000",
         "train.progress=off"]
GROUP_KEY = "aggregation"
METRIC = "modes_covered"  # the default figure metric when there is no FID
TABLE_METRICS = {"modes_covered": max, "high_quality": max}  # per-run best: higher is better

FIGURES = [f"{METRIC}_best_so_far_vs_wall_clock.png", f"{METRIC}_vs_iteration.png", f"{METRIC}_per_group.png",
           "aggregation_weights.png"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """One real `gan-bench train -m` sweep shared by the tests (copy it before changing it)."""
    root = tmp_path_factory.mktemp("report_sweep") / "sweep"
    r = cli("train", "-m", *SWEPT, *TRAIN, f"hydra.sweep.dir={root}")
    assert r.returncode == 0, r.stderr[-3000:]
    return root


@pytest.fixture
def copy(sweep, tmp_path) -> Path:
    return Path(shutil.copytree(sweep, tmp_path / "sweep", ignore=shutil.ignore_patterns("report")))


def runs_by_group(sweep: Path, jobs=tuple(JOBS)) -> dict[str, list[dict]]:
    """The metrics.json of the given jobs, by their value of the swept key (from their own overrides.yaml)."""
    out: dict[str, list[dict]] = {}
    for job in jobs:
        lines = (sweep / job / ".hydra" / "overrides.yaml").read_text().splitlines()
        group = next(line.split("=", 1)[1] for line in lines if line.startswith(f"- {GROUP_KEY}="))
        out.setdefault(group, []).append(json.loads((sweep / job / "metrics.json").read_text()))
    return dict(sorted(out.items()))


def best(metrics: dict, metric: str) -> float:
    values = [e[metric] for e in metrics["eval"] if e.get(metric) is not None]
    return TABLE_METRICS[metric](values)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def write_status(run_dir: Path, state: str, iteration: int, reason: str | None = None, pid: int | None = None,
                 resume: str | None = None) -> None:
    status = {"state": state, "reason": reason, "iteration": iteration, "iterations": 8,
              "updated": "2026-01-01T00:00:00Z", "resume_command": resume, "pid": pid or os.getpid(),
              "host": socket.gethostname()}
    (run_dir / "status.json").write_text(json.dumps(status))


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- the report folder ----------------------------------------------------------------------------------------------
def test_report_folder_tables_match_the_runs_and_figures_are_pngs(sweep, capsys):
    assert report_main([str(sweep)]) == 0
    out = sweep / "report"
    for name in ["report.md", "report.csv", "report.tex", "runs.csv", *FIGURES]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    from gan_bench.report.figures import PIXELS

    for name in FIGURES:
        assert png_size(out / name) == PIXELS, name
    rows = read_csv(out / "report.csv")
    groups = runs_by_group(sweep)
    assert [r[GROUP_KEY] for r in rows] == list(groups)
    for row, runs in zip(rows, groups.values()):
        assert row["n"] == row["launched"] == str(len(runs))
        for metric in TABLE_METRICS:
            values = [best(m, metric) for m in runs]
            np.testing.assert_allclose(float(row[f"{metric}_mean"]), np.mean(values))
            np.testing.assert_allclose(float(row[f"{metric}_std"]), np.std(values, ddof=1), atol=1e-12)
        seconds = [m["cost"]["seconds_per_iteration"] for m in runs]
        np.testing.assert_allclose(float(row["seconds_per_iteration_mean"]), np.mean(seconds))
    printed = capsys.readouterr()
    assert "modes ↑" in printed.out and f"wrote {out}" in printed.err
    md = (out / "report.md").read_text()
    assert all(f"]({name})" in md for name in FIGURES) and "| aggregation | n |" in md
    tex = (out / "report.tex").read_text()
    assert r"\begin{tabular}" in tex and r"\bottomrule" in tex
    assert [r["state"] for r in read_csv(out / "runs.csv")] == ["finished"] * 4
    # the weights figure shows a run whose weights vary: HV's, not AVG's constant 1/K
    weights_run = next(line for line in md.splitlines() if "aggregation weights of run" in line)
    hv_jobs = [j for j in JOBS if "aggregation=hv" in (sweep / j / ".hydra" / "overrides.yaml").read_text()]
    assert f"`{sweep / hv_jobs[0]}`" in weights_run


def test_until_compares_the_runs_at_one_budget(sweep, tmp_path, capsys):
    """--until 4: the runs as if they had stopped after iteration 4 (they also evaluated at 8)."""
    groups = runs_by_group(sweep)
    assert {e["iteration"] for runs in groups.values() for m in runs for e in m["eval"]} == {4, 8}
    assert report_main([str(sweep), "--until", "4", "--at", "last", "--no-files", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r[GROUP_KEY] for r in rows] == list(groups)
    differs = []
    for row, runs in zip(rows, groups.values()):
        for metric in TABLE_METRICS:
            at = {i: [next(e[metric] for e in m["eval"] if e["iteration"] == i) for m in runs] for i in (4, 8)}
            np.testing.assert_allclose(float(row[f"{metric}_mean"]), np.mean(at[4]))
            differs.append(at[4] != at[8])
        seconds = [m["cost"]["seconds_per_iteration"] for m in runs]  # the whole runs' cost
        np.testing.assert_allclose(float(row["seconds_per_iteration_mean"]), np.mean(seconds))
    assert any(differs)  # the evaluations at 8 would change the table: they were left out
    out = tmp_path / "r"
    assert report_main([str(sweep), "--until", "4", "--out", str(out), "--metric", METRIC]) == 0
    assert "only evaluations up to iteration 4" in (out / "report.md").read_text()
    assert json.loads((sweep / JOBS[0] / "metrics.json").read_text())["eval"][-1]["iteration"] == 8  # files untouched


def test_existing_report_needs_force(sweep, tmp_path, capsys):
    out = tmp_path / "paper"
    assert report_main([str(sweep), "--out", str(out), "--no-files", "--format", "csv"]) == 0
    assert not out.exists()  # --no-files: only printed
    assert report_main([str(sweep), "--out", str(out), "--metric", "high_quality"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "high_quality_per_group.png" in before
    capsys.readouterr()
    assert cli_main(["report", str(sweep), "--out", str(out), "--metric", "high_quality"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a report" in err[0] and "--force" in err[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert report_main([str(sweep), "--out", str(out), "--metric", "high_quality", "--force"]) == 0


def test_explicit_weights_run_and_metric(sweep, tmp_path):
    run = sweep / JOBS[0]
    out = tmp_path / "r"
    assert report_main([str(sweep), "--out", str(out), "--weights-run", str(run), "--metric", "high_quality",
                        "--at", "last"]) == 0
    from gan_bench.report.figures import PIXELS, read_weights

    kind, series = read_weights(run)
    assert kind == "weights" and sorted(series) == list(range(K))
    assert png_size(out / "aggregation_weights.png") == PIXELS
    assert f"`{run}`" in (out / "report.md").read_text()


@pytest.mark.parametrize("args,message", [
    (["--metric", "fid"], "--metric fid: no finished run has a value of it"),
    (["--metric", "is_std"], "--metric is_std: no finished run has a value of it"),
    (["--weights-run", "NOWHERE"], "is not a folder"),
    (["--weights-run", f"SWEEP/{JOBS[0]}/.hydra"], "holds no TensorBoard event file"),
    (["--until", "-1"], "--until -1: an iteration is 0 or more"),
    (["--until", "3"], "--until 3: no finished run has an evaluation at or before iteration 3 (the first is at "
                       "iteration 4)"),
])
def test_bad_inputs_give_one_line(sweep, tmp_path, capsys, args, message):
    args = [a.replace("SWEEP", str(sweep)).replace("NOWHERE", str(tmp_path / "nowhere")) for a in args]
    assert cli_main(["report", str(sweep), "--out", str(tmp_path / "r"), *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gan-bench: error:") and message in err[0], err
    assert captured.out == "" and not (tmp_path / "r").exists()  # nothing printed or written


def test_unreadable_multirun_yaml(copy, capsys):
    (copy / "multirun.yaml").write_text("hydra: [unclosed\n")
    assert cli_main(["report", str(copy), "--no-files"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot read {copy / 'multirun.yaml'}" in err[0]


def test_a_job_folder_is_named_by_what_differs_and_resumes_by_its_path(copy):
    """The real sweep's folders are JOBS (its shared TRAIN keys name none); the path, ``=`` and ``,`` and all, is
    what ``resume=`` takes, as a user pastes it."""
    assert sorted(p.name for p in copy.iterdir() if p.is_dir()) == JOBS
    r = cli("train", f"resume={copy / JOBS[2]}", "train.iterations=10")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((copy / JOBS[2] / "metrics.json").read_text())["iterations"] == 10
    assert f"results in {copy / JOBS[2]}" in r.stdout


# -- job statuses ---------------------------------------------------------------------------------------------------
def test_failed_diverged_and_missing_jobs_are_listed(copy, capsys):
    write_status(copy / JOBS[0], "failed", 3, "RuntimeError: CUDA out of memory")
    write_status(copy / JOBS[1], "diverged", 5, "non-finite generator loss")
    shutil.rmtree(copy / JOBS[3])
    assert report_main([str(copy), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    groups = runs_by_group(copy, jobs=(JOBS[2],))
    (group, runs), = groups.items()
    by_group = {r[GROUP_KEY]: r for r in rows}
    assert (by_group[group]["n"], by_group[group]["launched"]) == ("1", "2")
    other = next(g for g in by_group if g != group)
    assert (by_group[other]["n"], by_group[other]["launched"], by_group[other]["modes_covered_mean"]) == ("0", "2", "")
    np.testing.assert_allclose(float(by_group[group]["modes_covered_mean"]), best(runs[0], "modes_covered"))
    listing = captured.err  # the CSV stays clean; the jobs that did not finish go to stderr
    assert "not in the statistics: 3 of 4 jobs" in listing
    line = {state: next(x for x in listing.splitlines() if x.strip().startswith(state))
            for state in ("failed", "diverged", "missing")}
    assert str(copy / JOBS[0]) in line["failed"]
    assert "at iteration 3 of 8: RuntimeError: CUDA out of memory" in line["failed"]
    assert "at iteration 5 of 8: non-finite generator loss" in line["diverged"]
    assert str(copy / JOBS[3]) in line["missing"] and "does not exist" in line["missing"]
    assert "train.seed=" in line["missing"]  # its overrides come from the launch (multirun.yaml)
    # the table shows n/N
    assert report_main([str(copy), "--format", "markdown", "--no-files"]) == 0
    md = capsys.readouterr().out
    assert f"| {group} | 1/2 |" in md and f"| {other} | 0/2 |" in md and "- **failed**" in md


def test_running_interrupted_and_old_runs(copy, capsys):
    write_status(copy / JOBS[0], "running", 2, pid=dead_pid())  # its process is gone: stale
    write_status(copy / JOBS[1], "running", 6)  # this very process: alive
    write_status(copy / JOBS[2], "interrupted", 4, "SIGTERM", resume=f"gan-bench train resume={copy / JOBS[2]}")
    (copy / JOBS[3] / "status.json").unlink()  # a run of a version before status.json: judged by its metrics.json
    old = json.loads((copy / JOBS[3] / "metrics.json").read_text())
    old["iterations"] = old["config"]["train"]["iterations"] - 1
    (copy / JOBS[3] / "metrics.json").write_text(json.dumps(old))
    with pytest.raises(GanBenchError, match=r"no finished run found below .*\(4 jobs: 3 interrupted, 1 running\)"):
        report_main([str(copy), "--no-files"])
    write_status(copy / JOBS[3], "finished", 8)  # now it counts, whatever metrics.json says
    assert report_main([str(copy), "--out", str(copy / "r")]) == 0
    states = {r["folder"]: r for r in read_csv(copy / "r" / "runs.csv")}
    assert states[str(copy / JOBS[0])]["state"] == "interrupted" and "stale" in states[str(copy / JOBS[0])]["reason"]
    assert states[str(copy / JOBS[1])]["state"] == "running"
    assert states[str(copy / JOBS[2])]["resume_command"] == f"gan-bench train resume={copy / JOBS[2]}"
    assert states[str(copy / JOBS[3])]["state"] == "finished"
    out = capsys.readouterr().out
    assert "resume with: gan-bench train resume=" in out and "not in the statistics: 3 of 4 jobs" in out


def test_old_run_short_of_its_iterations_is_interrupted(copy, capsys):
    (copy / JOBS[1] / "status.json").unlink()  # a run of a version before status.json
    m = json.loads((copy / JOBS[1] / "metrics.json").read_text())
    m["iterations"] = m["config"]["train"]["iterations"] // 2
    (copy / JOBS[1] / "metrics.json").write_text(json.dumps(m))
    (copy / JOBS[0] / "metrics.json").unlink()  # launched, folder there, no metrics
    assert report_main([str(copy), "--no-files", "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert f"no status.json; metrics.json stops at iteration {m['iterations']} of" in err
    assert "the run folder holds no metrics.json" in err


def test_sweep_expansion_matches_hydra_basic_sweeper():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = ["a=1,2", "b=range(0,3)", "+c=x", "d=[1,2]", "e='p,q'", "f=choice(u,v)"]
    expected = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(args), None)[0]
    assert expand_sweep(args) == expected and len(expected) == 2 * 3 * 2


# -- TensorBoard HParams --------------------------------------------------------------------------------------------
def test_hparams_written_and_read_back(sweep, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    from gan_bench.report.hparams import log_hparams, log_run_hparams

    tb = tmp_path / "tb"
    for job in JOBS:
        shutil.copytree(sweep / job / ".hydra", tb / job / ".hydra")
        m = json.loads((sweep / job / "metrics.json").read_text())
        written = log_run_hparams(tb / job, sweep / job, m)
        acc = EventAccumulator(str(tb / job))
        acc.Reload()
        content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
        overrides = dict(line[2:].split("=", 1) for line in
                         (sweep / job / ".hydra" / "overrides.yaml").read_text().splitlines())
        assert start.hparams[GROUP_KEY].string_value == overrides[GROUP_KEY]
        # integers as text: TensorBoard shows 2, not 2.0000
        assert start.hparams["train.seed"].string_value == str(m["config"]["train"]["seed"])
        assert start.hparams["discriminators.count"].string_value == str(K)
        # the swept keys first and marked differs: the HParams tab shows the first five, those that differ first
        infos = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG]).hparam_infos
        assert {i.name for i in infos[:2]} == {GROUP_KEY, "train.seed"} and all(i.differs for i in infos[:2])
        assert not any(i.differs for i in infos[2:])
        assert written["hparams/best/modes_covered"] == best(m, "modes_covered")
        scalars = {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}
        np.testing.assert_allclose(scalars["hparams/best/modes_covered"], best(m, "modes_covered"))
        assert acc.Scalars("hparams/best/modes_covered")[-1].step == m["iterations"]
    # TensorBoard's own HParams backend sees one session per run, with the swept values
    sessions = _hparams_sessions(tb)
    assert sorted(sessions) == JOBS  # named by the swept values
    assert {s[GROUP_KEY] for s in sessions.values()} == {"avg", "hv"}
    # a SummaryWriter works too; non-scalar values become text, non-finite metrics are left out
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "w")) as writer:
        written = log_hparams(writer, {"flag": True, "none": None, "list": [1, 2], "lr": 1e-4},
                              {"x": 1.5, "bad": float("nan"), "text": "no"}, status="diverged", step=3)
    assert written == {"hparams/x": 1.5}
    acc = EventAccumulator(str(tmp_path / "w"))
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    hp = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG]).hparams
    assert hp["flag"].bool_value is True and hp["none"].string_value == "null"
    assert hp["list"].string_value == "[1, 2]" and hp["lr"].number_value == 1e-4
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert end.status == 2  # STATUS_FAILURE


def _hparams_sessions(logdir: Path) -> dict[str, dict]:
    """Session name -> hparams, as TensorBoard's HParams tab lists them."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    tb_context = base_plugin.TBContext(logdir=str(logdir), multiplexer=mux,
                                       data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir)))
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100,
                                               allowed_statuses=[api_pb2.STATUS_SUCCESS])
    response = list_session_groups.Handler(context.RequestContext(), backend_context.Context(tb_context), "",
                                           request).run()
    return {g.name: {k: v.string_value or v.number_value for k, v in g.hparams.items()}
            for g in response.session_groups}
