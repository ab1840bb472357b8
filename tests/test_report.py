"""gan-bench report: fake sweeps written by hand with known numbers, checked against numpy / hand-picked values."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from gan_bench.cli import main as cli_main
from gan_bench.errors import GanBenchError
from gan_bench.report import Stat, format_stat, report_main


def write_run(run_dir: Path, overrides: list[str], evals: list[dict], cost: dict | None = None,
              config: dict | None = None) -> Path:
    """A run folder as gan_bench.train leaves it: .hydra/overrides.yaml and metrics.json."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    metrics = {"name": "test", "iterations": 10, "wall_clock_s": 1.0, "iterations_per_s": 10.0, "grad_evals": 20,
               "final": {"g/loss": 1.0}, "cost": cost or {}, "eval": evals, "best": {}, "config": config or {}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def ev(iteration: int, generator: str = "raw", **values: float) -> dict:
    return {"iteration": iteration, "wall_clock_s": iteration / 10, "generator": generator, **values}


# FID / IS of the last evaluation and of the best one, per (aggregation, seed)
FID_LAST = {"avg": [30.0, 34.0, 29.0], "hv": [20.0, 25.5, 21.25]}
FID_BEST = {"avg": [28.0, 31.0, 29.0], "hv": [18.0, 25.5, 19.0]}
IS_BEST = {"avg": [5.0, 5.5, 6.25], "hv": [7.0, 7.5, 7.0]}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """multirun/DATE/TIME/N: aggregation in {avg, hv} x train.seed in {0, 1, 2}; the best FID comes before the last
    one except where equal, IS peaks at the first evaluation."""
    root = tmp_path / "multirun" / "2024-01-01" / "12-00-00"
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    job = 0
    for agg, k in (("avg", 1), ("hv", 4)):
        for seed in range(3):
            fb, fl, ib = FID_BEST[agg][seed], FID_LAST[agg][seed], IS_BEST[agg][seed]
            evals = [ev(5, fid=fb + 10, is_mean=ib), ev(5, "ema", fid=fb - 5, is_mean=ib - 1),
                     ev(10, fid=fb, is_mean=ib - 0.5), ev(10, "ema", fid=fl - 3, is_mean=ib - 2),
                     ev(15, fid=fl, is_mean=ib - 1), ev(15, "ema", fid=fl - 1, is_mean=ib + 3)]
            cost = {"flops_per_iteration": 2.0e9 * k, "params_D_total": 1000 * k, "peak_memory_mb": 100.0 + seed,
                    "seconds_per_iteration": 0.1 * k, "discriminators": k}
            config = {"aggregation": {"name": agg}, "discriminators": {"count": k}, "train": {"seed": seed}}
            write_run(root / str(job), [f"aggregation={agg}", f"discriminators=d{k}", f"train.seed={seed}"],
                      evals, cost, config)
            job += 1
    return root


def csv_rows(capsys, args: list[str]) -> list[dict[str, str]]:
    assert report_main(["--no-files", *args, "--format", "csv"]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_groups_by_swept_overrides_with_numpy_mean_and_sample_std(sweep, capsys):
    rows = csv_rows(capsys, [str(sweep.parent.parent)])
    # aggregation and discriminators vary together, train.seed is averaged over
    assert [(r["aggregation"], r["discriminators"], r["n"]) for r in rows] == [("avg", "d1", "3"), ("hv", "d4", "3")]
    assert "train.seed" not in rows[0]
    for row, agg in zip(rows, ("avg", "hv")):
        np.testing.assert_allclose(float(row["fid_mean"]), np.mean(FID_BEST[agg]))
        np.testing.assert_allclose(float(row["fid_std"]), np.std(FID_BEST[agg], ddof=1))
        np.testing.assert_allclose(float(row["is_mean_mean"]), np.mean(IS_BEST[agg]))
        assert row["fid_n"] == "3"
    # cost columns: all present keys, FLOPs/params constant within a group, memory averaged over seeds
    assert float(rows[1]["flops_per_iteration_mean"]) == 8.0e9
    assert float(rows[1]["flops_per_iteration_std"]) == 0.0
    assert float(rows[0]["params_D_total_mean"]) == 1000
    np.testing.assert_allclose(float(rows[0]["peak_memory_mb_mean"]), 101.0)
    np.testing.assert_allclose(float(rows[0]["peak_memory_mb_std"]), 1.0)
    assert "wall_clock_to_best_fid_s_mean" not in rows[0]  # no run has it


def test_best_vs_last_and_generator_choice(sweep, capsys):
    last = csv_rows(capsys, [str(sweep), "--at", "last", "--metrics", "fid,is_mean"])
    np.testing.assert_allclose([float(r["fid_mean"]) for r in last],
                               [np.mean(FID_LAST["avg"]), np.mean(FID_LAST["hv"])])
    np.testing.assert_allclose(float(last[0]["is_mean_mean"]), np.mean(IS_BEST["avg"]) - 1)
    # ema: best FID is the iteration-5 one (fb - 5) unless fl - 3 is lower; IS best is the last (ib + 3)
    ema = csv_rows(capsys, [str(sweep), "--generator", "ema", "--metrics", "fid,is_mean"])
    for row, agg in zip(ema, ("avg", "hv")):
        expected = [min(fb - 5, fl - 3, fl - 1) for fb, fl in zip(FID_BEST[agg], FID_LAST[agg])]
        np.testing.assert_allclose(float(row["fid_mean"]), np.mean(expected))
        np.testing.assert_allclose(float(row["is_mean_mean"]), np.mean(IS_BEST[agg]) + 3)
    # best generator at the last evaluation: min FID of raw (fl) and ema (fl - 1); max IS of ib - 1 and ib + 3
    best_last = csv_rows(capsys, [str(sweep), "--generator", "best", "--at", "last", "--metrics", "fid,is_mean"])
    np.testing.assert_allclose(float(best_last[0]["fid_mean"]), np.mean(FID_LAST["avg"]) - 1)
    np.testing.assert_allclose(float(best_last[0]["is_mean_mean"]), np.mean(IS_BEST["avg"]) + 3)


def test_by_config_key_and_unknown_key(sweep, capsys):
    rows = csv_rows(capsys, [str(sweep), "--by", "discriminators.count", "--metrics", "fid"])
    assert [(r["discriminators.count"], r["n"]) for r in rows] == [("1", "3"), ("4", "3")]
    rows = csv_rows(capsys, [str(sweep), "--by", "train.seed", "--metrics", "fid"])
    assert [r["train.seed"] for r in rows] == ["0", "1", "2"]
    np.testing.assert_allclose(float(rows[0]["fid_mean"]), np.mean([FID_BEST["avg"][0], FID_BEST["hv"][0]]))
    with pytest.raises(GanBenchError, match="no run has this key"):
        report_main(["--no-files", str(sweep), "--by", "model.nothing"])
    with pytest.raises(GanBenchError, match="config section"):
        report_main(["--no-files", str(sweep), "--by", "aggregation"])


def test_missing_metric_shows_dash_and_n(tmp_path, capsys):
    write_run(tmp_path / "0", ["loss=ns", "train.seed=0"], [ev(5, fid=10.0, precision=0.5)])
    write_run(tmp_path / "1", ["loss=ns", "train.seed=1"], [ev(5, fid=12.0)])
    write_run(tmp_path / "2", ["loss=hinge", "train.seed=0"], [ev(5, fid=14.0)])
    assert report_main(["--no-files", str(tmp_path), "--metrics", "fid,precision", "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| loss | n | FID ↓ | precision ↑ |"
    assert lines[1] == "|:---|---:|---:|---:|"
    # natural order: hinge before ns; hinge has no precision; ns has it for 1 of its 2 runs (nothing to compare:
    # not bold); the lower mean FID is bold
    assert lines[2] == "| hinge | 1 | 14 | – |"
    assert lines[3] == f"| ns | 2 | **11.0 ± {np.std([10.0, 12.0], ddof=1):.1f}** | 0.5 (n=1) |"


def test_markdown_marks_best_group(sweep, capsys):
    assert report_main(["--no-files", str(sweep), "--metrics", "fid,is_mean", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    hv = next(line for line in out.splitlines() if line.startswith("| hv"))
    avg = next(line for line in out.splitlines() if line.startswith("| avg"))
    assert hv.split(" | ")[3].startswith("**") and not avg.split(" | ")[3].startswith("**")  # lower FID
    assert hv.split(" | ")[4].startswith("**")  # higher IS
    assert "8G" in hv and "4k" in hv  # SI prefixes for FLOPs and parameters


def test_single_group_and_no_bold_for_ties(tmp_path, capsys):
    write_run(tmp_path / "a" / "0", ["train.seed=0"], [ev(5, fid=10.0)])
    write_run(tmp_path / "a" / "1", ["train.seed=1"], [ev(5, fid=13.0)])
    write_run(tmp_path / "b" / "0", ["train.seed=0"], [ev(5, fid=11.0)])
    # only seeds differ: one group over the runs of both paths
    assert report_main(["--no-files", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| runs | n | FID ↓ |"
    assert lines[2] == f"| all | 3 | {np.mean([10, 13, 11]):.1f} ± {np.std([10, 13, 11], ddof=1):.1f} |"
    # two groups with equal means: nothing is marked best
    write_run(tmp_path / "c" / "0", [], [ev(5, fid=10.0)], config={"loss": "ns"})
    write_run(tmp_path / "c" / "1", [], [ev(5, fid=10.0)], config={"loss": "hinge"})
    assert report_main(["--no-files", str(tmp_path / "c"), "--by", "loss", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == ["| hinge | 1 | 10 |", "| ns | 1 | 10 |"]


def test_latex_booktabs(sweep, capsys):
    assert report_main(["--no-files", str(sweep), "--metrics", "fid", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("%")
    assert lines[1] == r"\begin{tabular}{llrrrrrr}"
    assert lines[2] == r"\toprule" and lines[4] == r"\midrule" and lines[-2] == r"\bottomrule"
    assert lines[-1] == r"\end{tabular}"
    assert lines[3].startswith(r"aggregation & discriminators & $n$ & FID $\downarrow$ & FLOPs/it")
    assert r"peak mem (MB)" in lines[3] and r"s/it \\" in lines[3]
    mean, std = np.mean(FID_BEST["avg"]), np.std(FID_BEST["avg"], ddof=1)
    assert lines[5].startswith(rf"avg & d1 & 3 & ${mean:.1f} \pm {std:.1f}$ & $2\,\mathrm{{G}}$ & ")
    assert lines[6].split(" & ")[3].startswith(r"$\mathbf{")


def test_latex_escapes_labels(tmp_path, capsys):
    write_run(tmp_path / "0", ["+model.g_width=8", "train.seed=0"], [ev(1, fid=3.0)])
    write_run(tmp_path / "1", ["+model.g_width=16", "train.seed=0"], [ev(1, fid=4.0)])
    assert report_main(["--no-files", str(tmp_path), "--format", "latex"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3] == r"model.g\_width & $n$ & FID $\downarrow$ \\"
    assert [line.split(" & ")[0] for line in lines[5:7]] == ["8", "16"]


def test_rich_table_default(sweep, capsys):
    assert report_main(["--no-files", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "aggregation" in out and "FID ↓" in out and "IS ↑" in out and "s/it" in out
    mean, std = np.mean(FID_BEST["hv"]), np.std(FID_BEST["hv"], ddof=1)
    hv = next(line for line in out.splitlines() if " hv " in line)
    assert f"{mean:.1f} ± {std:.1f}" in hv


def test_corrupt_metrics_warns_and_skips(sweep, capsys):
    bad = sweep / "3" / "metrics.json"
    bad.write_text('{"eval": [')
    (sweep / "4" / "metrics.json").write_text('[1, 2]')
    (sweep / "0" / "metrics.json").write_text('{"eval": [{"generator": "raw", "fid": 3.0}]}')  # no iteration
    assert report_main(["--no-files", str(sweep), "--metrics", "fid", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    warnings = [line for line in captured.err.splitlines() if line.startswith("gan-bench: warning:")]
    assert len(warnings) == 3 and all(w.startswith("gan-bench: warning: skipping corrupt") for w in warnings)
    assert [str(sweep / j / "metrics.json") in w for j, w in zip("034", warnings)] == [True] * 3
    assert [(r["aggregation"], r["n"]) for r in rows] == [("avg", "2"), ("hv", "1")]
    np.testing.assert_allclose(float(rows[0]["fid_mean"]), np.mean(FID_BEST["avg"][1:]))
    np.testing.assert_allclose(float(rows[1]["fid_mean"]), FID_BEST["hv"][2])


def test_no_runs_and_missing_path_errors(tmp_path):
    empty = tmp_path / "empty_sweep"
    (empty / "0").mkdir(parents=True)
    with pytest.raises(GanBenchError, match=f"no run found below {empty}"):
        report_main(["--no-files", str(empty)])
    with pytest.raises(GanBenchError, match="does not exist"):
        report_main(["--no-files", str(tmp_path / "nowhere")])


def test_cli_prints_one_line_error(tmp_path, capsys):
    assert cli_main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gan-bench: error: no run found below")


def test_best_needs_a_direction(sweep):
    with pytest.raises(GanBenchError, match="is_std"):
        report_main(["--no-files", str(sweep), "--metrics", "fid,is_std"])
    with pytest.raises(GanBenchError, match="--generator best.*is_std"):
        report_main(["--no-files", str(sweep), "--metrics", "is_std", "--at", "last", "--generator", "best"])


def test_unknown_generator_or_metric_warns(sweep, capsys):
    rows = csv_rows(capsys, [str(sweep), "--generator", "uniform", "--metrics", "fid,precision"])
    assert [r["fid_n"] for r in rows] == ["0", "0"] and rows[0]["fid_mean"] == ""
    assert report_main(["--no-files", str(sweep), "--generator", "uniform", "--metrics", "fid,precision",
                        "--format", "csv"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["gan-bench: warning: no run evaluated generator 'uniform' (evaluated: ema, raw)",
                   "gan-bench: warning: no run evaluated metric 'precision' (evaluated: fid, is_mean)"]


def test_output_is_written_once_unless_forced(sweep, tmp_path, capsys):
    target = tmp_path / "table.md"
    assert report_main(["--no-files", str(sweep), "--output", str(target)]) == 0  # format from the suffix
    written = target.read_text()
    assert report_main(["--no-files", str(sweep), "--format", "markdown"]) == 0
    assert capsys.readouterr().out == written
    target.write_text("keep me")
    with pytest.raises(GanBenchError, match="already exists"):
        report_main(["--no-files", str(sweep), "--output", str(target), "--format", "csv"])
    assert target.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert report_main(["--no-files", str(sweep), "--output", str(target), "--format", "csv", "--force"]) == 0
    assert target.read_text().startswith("aggregation,discriminators,n,fid_mean,")


@pytest.mark.parametrize("mean,std,n,expected", [
    (23.4567, 0.1234, 3, ("23.46", "0.12", "")),
    (23.4567, 3.4, 3, ("23.5", "3.4", "")),
    (1234.4, 150.0, 2, ("1234", "150", "")),
    (7.0, float("nan"), 1, ("7", None, "")),
    (0.123456, 0.0, 3, ("0.1235", None, "")),
])
def test_format_stat(mean, std, n, expected):
    assert format_stat(Stat(mean, std, n)) == expected


def test_format_stat_si():
    assert format_stat(Stat(2.5e9, 0.25e9, 3), si=True) == ("2.50", "0.25", "G")
    assert format_stat(Stat(4000.0, 0.0, 3), si=True) == ("4", None, "k")
