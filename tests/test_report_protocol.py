"""gan-bench report compares values measured under one protocol (issue 20, point 2): by default each run's values
measured as its training measured them, with --protocol KEY=VALUE those whose protocol has KEY = VALUE; what it
leaves out is named, and a group whose runs were measured differently is flagged. Run folders written by hand."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from gan_bench.errors import GanBenchError
from gan_bench.report import report_main
from gan_bench.report.collect import RunRecord, collect
from gan_bench.report.protocol import BUILT_IN_KEYS, metric_of
from gan_bench.report.tables import build_report, evaluated_metrics

METRIC_KEYS = {"fid": {"direction": "lower", "label": "FID"}, "is_mean": {"direction": "higher", "label": "IS"},
               "is_std": {"direction": None, "label": "is_std"}}


def fid_protocol(n_fake: int = 10_000, machine: str = "a") -> dict:
    """FID's protocol as gan_bench.metrics.fid records it (paths on ``machine``)."""
    return {"n_real": 50_000, "n_fake": n_fake, "split": "train", "backbone": "pt_inception-2015-12-05",
            "weights_file": f"/home/{machine}/.cache/torch/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth",
            "weights_sha256": "6726825d" * 8, "weights_origin": "pytorch-fid", "weights_converted_from": None,
            "has_is_logits": True, "input": "uint8-like [0, 255]", "real_stats": f"/home/{machine}/stats/c10.npz"}


def is_protocol(n_fake: int = 10_000, machine: str = "a") -> dict:
    return {"n_fake": n_fake, "splits": 10, "split": "train", "backbone": "pt_inception-2015-12-05",
            "weights_file": f"/home/{machine}/pt_inception.pth", "weights_sha256": "6726825d" * 8}


def protocol(n_fake: int = 10_000, machine: str = "a") -> dict:
    return {"fid": fid_protocol(n_fake, machine), "is": is_protocol(n_fake, machine)}


def entry(iteration: int, fid: float, is_mean: float, n_fake: int = 10_000, machine: str = "a",
          source: str | None = None, recorded: bool = True) -> dict:
    """One evaluation entry of the raw generator: training's, or with ``source`` one that gan-bench eval appended;
    ``recorded=False``: as an older gan-bench wrote it (no protocol)."""
    e = {"iteration": iteration, "wall_clock_s": iteration / 10, "generator": "raw", "fid": fid,
         "is_mean": is_mean, "is_std": 0.1}
    if recorded:
        e["protocol"] = protocol(n_fake, machine)
    if source is not None:
        e["source"] = source
        e["checkpoint"] = f"/runs/{source.split()[-1]}/checkpoints/last.pt"
    return e


def write_run(run_dir: Path, overrides: list[str], evals: list[dict], training: dict | None) -> Path:
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    metrics = {"name": "test", "iterations": 10, "wall_clock_s": 1.0, "final": {}, "cost": {}, "eval": evals,
               "best": {}, "metric_keys": METRIC_KEYS, "config": {}}
    if training is not None:
        metrics["protocol"] = training
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


# per (aggregation, seed): FID at iterations 5 and 10 of training (n_fake = 10,000), IS at 10
FIDS = {"avg": [(40.0, 35.0), (42.0, 36.5), (39.0, 38.0)], "hv": [(36.0, 33.0), (35.0, 34.5), (37.0, 31.0)]}
IS = {"avg": [6.0, 6.5, 6.25], "hv": [7.0, 7.25, 7.5]}
RE_EVAL = ("hv", 1, 20.0, 9.0)  # hv seed 1 re-evaluated with 2,000 samples: a much better FID and IS
SAME_ELSEWHERE = ("avg", 2, 30.0)  # avg seed 2 re-evaluated as in training, on another machine (other paths)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """multirun/DATE/TIME/N: aggregation in {avg, hv} x train.seed in {0, 1, 2}, evaluated in training with
    n_fake=10000; job 4 (hv, seed 1) re-evaluated with eval.n_samples=2000, job 2 (avg, seed 2) re-evaluated with
    the training's settings on another machine."""
    root = tmp_path / "multirun" / "2024-01-01" / "12-00-00"
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    job = 0
    for agg in ("avg", "hv"):
        for seed in range(3):
            (f5, f10), is10 = FIDS[agg][seed], IS[agg][seed]
            evals = [entry(5, f5, is10 - 1), entry(10, f10, is10)]
            if (agg, seed) == RE_EVAL[:2]:
                evals.append(entry(10, RE_EVAL[2], RE_EVAL[3], n_fake=2000, source=f"gan-bench eval {root / '4'}"))
            if (agg, seed) == SAME_ELSEWHERE[:2]:
                evals.append(entry(10, SAME_ELSEWHERE[2], is10, machine="b", source=f"gan-bench eval {root / '2'}"))
            write_run(root / str(job), [f"aggregation={agg}", f"train.seed={seed}"], evals, protocol())
            job += 1
    return root


def run_report(capsys, args: list[str], fmt: str = "csv") -> tuple[str, str]:
    assert report_main(["--no-files", *args, "--format", fmt]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def csv_rows(text: str) -> dict[str, dict[str, str]]:
    return {row["aggregation"]: row for row in csv.DictReader(io.StringIO(text))}


def training_best(agg: str) -> list[float]:
    """Each run's best FID among the values measured with the training protocol (paths aside)."""
    best = [min(pair) for pair in FIDS[agg]]
    if agg == SAME_ELSEWHERE[0]:
        best[SAME_ELSEWHERE[1]] = min(best[SAME_ELSEWHERE[1]], SAME_ELSEWHERE[2])
    return best


# -- (1) the scenario ---------------------------------------------------------------------------------------
def test_default_compares_each_runs_training_protocol_and_names_what_it_left_out(sweep, capsys):
    out, err = run_report(capsys, [str(sweep), "--metrics", "fid,is_mean"])
    rows = csv_rows(out)
    for agg in ("avg", "hv"):
        np.testing.assert_allclose(float(rows[agg]["fid_mean"]), np.mean(training_best(agg)))
        np.testing.assert_allclose(float(rows[agg]["fid_std"]), np.std(training_best(agg), ddof=1))
        np.testing.assert_allclose(float(rows[agg]["is_mean_mean"]), np.mean(IS[agg]))
        assert rows[agg]["fid_n"] == "3" and rows[agg]["protocols_differ"] == ""
    # what the issue saw: the re-evaluation taken as the run's best
    with_it = [min(pair) for pair in FIDS["hv"]]
    with_it[RE_EVAL[1]] = RE_EVAL[2]
    assert not np.isclose(float(rows["hv"]["fid_mean"]), np.mean(with_it))
    # the left-out entry named, on stderr for CSV: its run, metric, protocol and the option selecting it
    left = [line for line in err.splitlines() if "left out" in line]
    assert len(left) == 1, err
    assert left[0].strip() == (f"left out 1 evaluation of {sweep / '4'} (fid, is: n_fake=2000, the run's training "
                               "protocol has n_fake=10000; select it with --protocol n_fake=2000)")
    # the same in the terminal table and in markdown; the run measured on another machine is not named
    for fmt in ("table", "markdown"):
        text, _ = run_report(capsys, [str(sweep), "--metrics", "fid,is_mean"], fmt)
        assert f"left out 1 evaluation of {sweep / '4'}" in text and "--protocol n_fake=2000" in text
        assert str(sweep / "2") not in text


def test_figures_use_the_selected_entries(sweep):
    from gan_bench.report.figures import iteration_bands, wall_clock_bands

    collection = collect([sweep])
    report = build_report(collection.runs, ["fid"], jobs=collection.jobs)
    hv = next(b for b in iteration_bands(report, "fid", "raw") if b.label.startswith("hv"))
    np.testing.assert_allclose(hv.mean, [np.mean([p[0] for p in FIDS["hv"]]), np.mean([p[1] for p in FIDS["hv"]])])
    best = next(b for b in wall_clock_bands(report, "fid", "raw") if b.label.startswith("hv"))
    assert best.mean.min() == pytest.approx(np.mean([min(p) for p in FIDS["hv"]]))
    assert report.rows[1].runs[RE_EVAL[1]].metrics is not collection.runs[4].metrics  # the records are unchanged
    assert len(collection.runs[4].metrics["eval"]) == 3


# -- (2) --protocol KEY=VALUE -------------------------------------------------------------------------------------
def test_protocol_option_selects_the_re_evaluation_and_names_the_runs_without_one(sweep, capsys):
    out, err = run_report(capsys, [str(sweep), "--metrics", "fid,is_mean", "--protocol", "n_fake=2000"])
    rows = csv_rows(out)
    assert (rows["hv"]["fid_n"], float(rows["hv"]["fid_mean"])) == ("1", RE_EVAL[2])
    assert float(rows["hv"]["is_mean_mean"]) == RE_EVAL[3]
    assert (rows["avg"]["fid_n"], rows["avg"]["fid_mean"], rows["avg"]["is_mean_n"]) == ("0", "", "0")
    assert (f"left out 13 evaluations of 6 runs (fid, is: n_fake=10000, not 2000 as --protocol n_fake=2000 asks): "
            f"{sweep}/{{0, 1, 2, 3, 4, 5}}") in err
    missing = next(line for line in err.splitlines() if "no fid" in line).strip()
    assert missing == ("no fid, is_mean value under the selected protocol for 5 runs (all their evaluations of it "
                       f"were left out): {sweep}/{{0, 1, 2, 3, 5}}")
    # the markdown table: the runs without such a value are missing (–), the hv cell has n=1
    text, _ = run_report(capsys, [str(sweep), "--metrics", "fid", "--protocol", "n_fake=2000"], "markdown")
    lines = text.splitlines()
    assert lines[2].startswith("| avg | 3 | – |") and lines[3].startswith(f"| hv | 3 | {RE_EVAL[2]:g} (n=1) |")
    assert "values whose protocol has n_fake=2000" in text
    # the value is compared as JSON-ish text: "2000.0" is 2000; a string value as it is
    out, _ = run_report(capsys, [str(sweep), "--metrics", "fid", "--protocol", "n_fake=2000.0"])
    assert csv_rows(out)["hv"]["fid_n"] == "1"
    out, _ = run_report(capsys, [str(sweep), "--metrics", "fid", "--protocol", "split=train"])
    assert [csv_rows(out)[a]["fid_n"] for a in ("avg", "hv")] == ["3", "3"]
    np.testing.assert_allclose(float(csv_rows(out)["hv"]["fid_mean"]),
                               np.mean([min(FIDS["hv"][0]), RE_EVAL[2], min(FIDS["hv"][2])]))


def test_protocol_option_errors(sweep):
    with pytest.raises(GanBenchError, match="no evaluation's protocol has nfake"):
        report_main(["--no-files", str(sweep), "--protocol", "nfake=2000"])
    with pytest.raises(GanBenchError, match="real_stats names a file on one machine"):
        report_main(["--no-files", str(sweep), "--protocol", "real_stats=/x.npz"])
    with pytest.raises(GanBenchError, match="expected KEY=VALUE"):
        report_main(["--no-files", str(sweep), "--protocol", "n_fake"])
    with pytest.raises(GanBenchError, match="given twice"):
        report_main(["--no-files", str(sweep), "--protocol", "n_fake=1", "--protocol", "n_fake=2"])


# -- (3) a group whose runs were measured differently -----------------------------------------------------------------
@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """loss=ns: seed 0 trained with n_fake=5000, seed 1 with 10000; loss=hinge: both with 10000."""
    for job, (loss, seed, n_fake, fid) in enumerate([("ns", 0, 5000, 30.0), ("ns", 1, 10_000, 32.0),
                                                     ("hinge", 0, 10_000, 40.0), ("hinge", 1, 10_000, 41.0)]):
        write_run(tmp_path / "sweep" / str(job), [f"loss={loss}", f"train.seed={seed}"],
                  [entry(10, fid, 6.0, n_fake=n_fake)], protocol(n_fake))
    return tmp_path / "sweep"


def test_a_group_measured_under_different_protocols_is_flagged_everywhere(mixed, capsys):
    note = "≠ loss=ns, FID: protocols differ in n_fake (5000, 10000); its mean mixes them"
    out, err = run_report(capsys, [str(mixed), "--metrics", "fid"])
    rows = {r["loss"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["ns"]["protocols_differ"] == "fid: protocols differ in n_fake (5000, 10000)"
    assert rows["hinge"]["protocols_differ"] == ""
    assert float(rows["ns"]["fid_mean"]) == 31.0 and note in err
    md, _ = run_report(capsys, [str(mixed), "--metrics", "fid"], "markdown")
    assert "| ns | 2 | **31.0 ± 1.4** ≠ |" in md and "| hinge | 2 | 40.50 ± 0.71 |" in md
    assert f"- {note}" in md
    text, _ = run_report(capsys, [str(mixed), "--metrics", "fid"], "table")
    ns = next(line for line in text.splitlines() if " ns " in line)
    assert "31.0 ± 1.4 ≠" in ns and note in text
    tex, _ = run_report(capsys, [str(mixed), "--metrics", "fid"], "latex")
    assert r"$\mathbf{31.0 \pm 1.4}$\textsuperscript{$\neq$}" in tex and f"%   {note}" in tex
    # the report folder's files carry it too
    assert report_main([str(mixed), "--metrics", "fid", "--out", str(mixed / "rep")]) == 0
    assert f"- {note}" in (mixed / "rep" / "report.md").read_text()
    assert ',"fid: protocols differ in n_fake (5000, 10000)"' in (mixed / "rep" / "report.csv").read_text()
    assert r"\neq" in (mixed / "rep" / "report.tex").read_text()


# -- (4) entries of older gan-bench (no protocol) ---------------------------------------------------------------------
def test_old_entries_without_protocol(tmp_path, capsys):
    root = tmp_path / "sweep"
    old_eval = entry(10, 10.0, 9.0, source=f"gan-bench eval {root / '0'}", recorded=False)
    write_run(root / "0", ["train.seed=0"], [entry(5, 40.0, 6.0, recorded=False), entry(10, 35.0, 6.5, recorded=False),
                                             old_eval], protocol(2000))  # the old eval merged its protocol in
    write_run(root / "1", ["train.seed=1"], [entry(10, 33.0, 7.0)], protocol())
    out, err = run_report(capsys, [str(root), "--metrics", "fid"])
    row = next(csv.DictReader(io.StringIO(out)))
    np.testing.assert_allclose(float(row["fid_mean"]), np.mean([35.0, 33.0]))  # the training's, not the 10.0
    assert row["protocols_differ"] == ""  # run 0's training protocol is unknown (its record's was overwritten)
    assert (f"left out 1 evaluation of {root / '0'} (fid: appended by `gan-bench eval {root / '0'}` without a "
            "record of how it was measured (an older gan-bench eval))") in err
    # an older run never re-evaluated: its entries are the training's, measured as its top-level protocol says
    write_run(tmp_path / "old" / "0", ["train.seed=0"], [entry(10, 50.0, 5.0, recorded=False)], None)
    write_run(tmp_path / "old" / "1", ["train.seed=1"], [entry(10, 52.0, 5.0, recorded=False)], protocol())
    out, err = run_report(capsys, [str(tmp_path / "old"), "--metrics", "fid"])
    assert float(next(csv.DictReader(io.StringIO(out)))["fid_mean"]) == 51.0 and "left out" not in err
    out, err = run_report(capsys, [str(tmp_path / "old"), "--metrics", "fid", "--protocol", "n_fake=10000"])
    assert float(next(csv.DictReader(io.StringIO(out)))["fid_mean"]) == 52.0
    assert f"left out 1 evaluation of {tmp_path / 'old' / '0'} (fid: no recorded protocol, so not selectable with " \
           "--protocol n_fake=10000)" in err


# -- the pieces ---------------------------------------------------------------------------------------------------
def test_metric_keys_and_built_in_table_agree_with_the_registry():
    import gan_bench.metrics  # noqa: F401  (registers the built-ins)
    from gan_bench.metrics.registry import BUILT_IN, METRICS

    assert BUILT_IN_KEYS == {name: METRICS[name] for name in BUILT_IN}
    two = {"fid": {}, "is": {}}
    assert [metric_of(k, two) for k in ("fid", "is_mean", "is_std", "plugin")] == ["fid", "is", "is", None]
    assert metric_of("plugin_score", {"my_plugin": {}}) == "my_plugin"


def test_evaluated_metrics_are_the_numeric_keys(sweep):
    runs = collect([sweep]).runs
    assert evaluated_metrics(runs) == {"fid", "is_mean", "is_std"}  # not protocol, source, checkpoint, generator
    record = RunRecord(Path("."), {}, {"eval": [{"iteration": 1, "generator": "raw", "fid": None, "flag": True}]})
    assert evaluated_metrics([record]) == {"fid"}


def test_hparams_results_use_the_training_protocol(sweep):
    from gan_bench.report.hparams import run_metrics

    metrics = json.loads((sweep / "4" / "metrics.json").read_text())
    assert run_metrics(metrics)["best/fid"] == min(FIDS["hv"][RE_EVAL[1]])
