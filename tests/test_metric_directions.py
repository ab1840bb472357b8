"""Each metric declares, per result key, which way is better (and a label); training's best-so-far tracking,
``train.objective`` and ``gan-bench report`` read those declarations, a plug-in metric's included."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import compose
from gan_bench.metrics import HIGHER, LOWER, POINTS, Metric, MetricsError, registry
from gan_bench.metrics.extractors import RawSamples
from gan_bench.report.collect import collect
from gan_bench.report.tables import build_report, eval_value, render_markdown
from gan_bench.train import train, update_best

EXPECTED = {"fid": (LOWER, "FID"), "fid_classifier": (LOWER, "FID (classifier)"), "is_mean": (HIGHER, "IS"),
            "is_std": (None, "IS std"), "kid_mean": (LOWER, "KID"), "kid_std": (None, "KID std"),
            "precision": (HIGHER, "precision"), "recall": (HIGHER, "recall"), "modes_covered": (HIGHER, "modes"),
            "high_quality": (HIGHER, "high quality"), "mode_kl": (LOWER, "mode KL"),
            "modes_covered_stacked": (HIGHER, "modes (stacked)"), "mode_kl_stacked": (LOWER, "mode KL (stacked)")}


def plugin(name: str, key: str, direction: str | None, **body) -> type[Metric]:
    """A 2-D points metric class with one result key (not registered)."""
    return type(name.title(), (Metric,), {"name": name, "keys": (key,), "data": POINTS, "extractor": RawSamples,
                                          "output": "samples", "directions": {key: direction}, **body})


def test_every_registered_key_declares_a_direction_and_a_label():
    for name in registry.BUILT_IN:
        assert name in registry.registered_metrics()
    declared = registry.metric_keys()
    assert set(EXPECTED) <= set(declared)
    for key, (direction, label) in EXPECTED.items():
        assert declared[key] == {"direction": direction, "label": label}
        assert registry.direction(key) == direction and registry.label(key) == label
    for cls in registry.metric_classes(registry.registered_metrics()):  # plug-ins other test modules registered too
        for key in cls.keys:
            assert cls.directions[key] in (LOWER, HIGHER, None) and registry.label(key)
    assert [registry.sign(k) for k in ("fid", "is_mean", "is_std", "no_such_key")] == [-1, 1, 0, 0]
    assert registry.direction("no_such_key") is None and registry.label("no_such_key") == "no_such_key"


def test_a_key_without_a_declared_direction_is_refused_at_registration():
    with pytest.raises(MetricsError, match=r"declares no direction for 'score': add directions = \{'score': 'lower'"):
        registry.register_metric(type("NoDirection", (Metric,), {
            "name": "test_no_direction", "keys": ("score",), "data": POINTS, "extractor": RawSamples,
            "output": "samples"}))
    with pytest.raises(MetricsError, match="has directions {'score': 'max'}"):
        registry.register_metric(plugin("test_bad_direction", "score", "max"))
    with pytest.raises(MetricsError, match="labels for 'other', not among its keys"):
        registry.register_metric(plugin("test_stray_label", "score", HIGHER, labels={"other": "x"}))
    with pytest.raises(MetricsError, match="declares 'fid' higher, but metric 'fid' already declares it lower"):
        registry.register_metric(plugin("test_fid_up", "fid", HIGHER))
    assert not {"test_no_direction", "test_bad_direction", "test_stray_label", "test_fid_up"} & set(registry.METRICS)


def test_best_so_far_follows_each_keys_declared_direction():
    registry.register_metric(plugin("test_score_up", "score_up", HIGHER, labels={"score_up": "score"}))
    best: dict = {}
    improved = []
    sequence = [(1, {"score_up": 0.2, "fid": 50.0, "is_std": 0.5}), (2, {"score_up": 0.9, "fid": 60.0}),
                (3, {"score_up": 0.5, "fid": 30.0, "is_std": 0.1}), (4, {"score_up": float("nan"), "fid": None})]
    for it, values in sequence:
        improved.append(update_best(best, values, iteration=it, wall_clock_s=it / 10, generator="raw"))
    assert improved == [{"score_up", "fid"}, {"score_up"}, {"fid"}, set()]
    assert best["score_up"] == {"value": 0.9, "iteration": 2, "wall_clock_s": 0.2, "generator": "raw"}  # the max
    assert best["fid"]["value"] == 30.0 and best["fid"]["iteration"] == 3  # the min
    assert "is_std" not in best  # declared not optimised: not tracked
    assert registry.objective_sign("score_up") == 1 and registry.objective_sign("fid") == -1
    # train.objective of a finished run reads the run's own record first
    assert registry.objective_sign("gone", {"metric_keys": {"gone": {"direction": HIGHER, "label": "g"}}}) == 1
    assert registry.objective_sign("gone") == 0


def test_a_training_run_tracks_and_records_a_plugin_metric_that_goes_up(tmp_path):
    scores = iter([0.2, 0.9, 0.5])

    def compute(self, real, fake):
        return {"rising": next(scores)}

    registry.register_metric(plugin("test_rising", "rising", HIGHER, labels={"rising": "rising score"},
                                    compute=compute))
    out = train(compose(["dataset=ring8", "model=mlp", "model.generator.width=8", "model.discriminator.width=8",
                         "model.z_dim=2", "dataset.n_points=64", "train.batch_size=16", "train.iterations=3",
                         "train.progress=off", "train.sample_every=1000", "train.checkpoint_every=1000",
                         "eval.every=1", "eval.metrics=[test_rising]", "eval.n_samples=16",
                         "eval.generators=[raw]"]), tmp_path / "run")
    assert [e["rising"] for e in out["eval"]] == [0.2, 0.9, 0.5]
    assert out["best"]["rising"]["value"] == 0.9 and out["best"]["rising"]["iteration"] == 2
    assert out["metric_keys"] == {"rising": {"direction": HIGHER, "label": "rising score"}}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["metric_keys"] == out["metric_keys"]


def write_run(run_dir: Path, aggregation: str, evals: list[dict], metric_keys: dict | None) -> None:
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(f"- aggregation={aggregation}\n")
    metrics = {"name": "test", "iterations": 3, "wall_clock_s": 1.0, "eval": evals, "best": {}, "cost": {},
               "config": {}}
    if metric_keys is not None:
        metrics["metric_keys"] = metric_keys
    (run_dir / "metrics.json").write_text(json.dumps(metrics))


PLUGIN_KEYS = {"plugin_score": {"direction": HIGHER, "label": "plug-in score"},
               "fid": {"direction": LOWER, "label": "FID"}}


def runs(tmp_path: Path, metric_keys: dict | None) -> Path:
    """Two runs (two groups) of a plug-in metric no module here registers; its best is the max, FID's the min."""
    for i, (agg, scores, fids) in enumerate((("avg", [0.2, 0.9, 0.5], [50.0, 30.0, 40.0]),
                                             ("hv", [0.1, 0.3, 0.6], [45.0, 35.0, 20.0]))):
        evals = [{"iteration": it + 1, "wall_clock_s": it + 1.0, "generator": "raw", "plugin_score": s, "fid": f}
                 for it, (s, f) in enumerate(zip(scores, fids))]
        write_run(tmp_path / "sweep" / str(i), agg, evals, metric_keys)
    return tmp_path / "sweep"


def test_report_reads_a_plugin_metrics_direction_from_the_runs_records(tmp_path):
    assert registry.key_info("plugin_score") is None  # the report never imports the plug-in
    collection = collect([runs(tmp_path, PLUGIN_KEYS)])
    report = build_report(collection.runs, ["fid", "plugin_score"], jobs=collection.jobs)
    assert [(c.key, c.label, c.direction) for c in report.columns] == [("fid", "FID", -1),
                                                                       ("plugin_score", "plug-in score", 1)]
    cells = {row.labels: row.cells for row in report.rows}
    assert cells[("avg",)]["plugin_score"].mean == 0.9 and cells[("hv",)]["plugin_score"].mean == 0.6  # the max
    assert cells[("avg",)]["fid"].mean == 30.0 and cells[("hv",)]["fid"].mean == 20.0  # the min
    md = render_markdown(report)
    assert "| plug-in score ↑ |" in md and "**0.9**" in md  # higher is better: avg's 0.9 is the best group
    assert "FID ↓" in md and "**20**" in md
    from gan_bench.report.figures import wall_clock_bands

    bands = {b.label.split(" ")[0]: b for b in wall_clock_bands(report, "plugin_score", "raw")}
    np.testing.assert_array_equal(bands["avg"].mean, [0.2, 0.9, 0.9])  # best so far: a running max
    record = collection.runs[0].metrics
    assert eval_value(record, "plugin_score", "raw", "best") == 0.9 and eval_value(record, "fid", "raw", "best") == 30


def test_old_runs_fall_back_to_the_registry(tmp_path):
    from gan_bench.errors import GanBenchError

    collection = collect([runs(tmp_path, None)])  # made before metrics.json recorded metric_keys
    report = build_report(collection.runs, ["fid"], jobs=collection.jobs)
    assert [row.cells["fid"].mean for row in report.rows] == [30.0, 20.0]
    with pytest.raises(GanBenchError, match="needs to know whether higher or lower is better, unknown for "
                                            "plugin_score"):
        build_report(collection.runs, ["plugin_score"], jobs=collection.jobs)
