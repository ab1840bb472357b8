"""The ``logger`` group for real, offline: one short run logs to TensorBoard, CSV, W&B (offline mode) and MLflow (a
SQLite store) at once, and each record is read back with its own tool's reader: TensorBoard's EventAccumulator,
W&B's protobuf records of the offline run file, MLflow's client."""
from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest

from conftest import cli

RING = ["dataset=ring8", "model=mlp", "model.generator.width=8", "model.discriminator.width=8", "model.z_dim=2",
        "train.batch_size=16", "dataset.n_points=64", "train.progress=off", "train.measure_flops=false",
        "discriminators=d2", "train.iterations=6", "train.log_every=2", "train.sample_every=3",
        "train.checkpoint_every=6", "eval.metrics=[modes]", "eval.every=3", "eval.n_samples=64"]


def wandb_records(path: Path):
    """The records of a W&B run file (``run-ID.wandb``): a 7-byte header (":W&B", magic, version), then LevelDB's
    log format — 32 KiB blocks of chunks (crc32, length, type: full / first / middle / last) — each record a
    ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def test_all_four_loggers_at_once_written_and_read_back(tmp_path):
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    run = tmp_path / "run"
    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    r = cli("train", *RING, "logger=[tensorboard,csv,wandb,mlflow]", f"logger.mlflow.tracking_uri={store}",
            f"hydra.run.dir={run}", cwd=tmp_path, env={"WANDB_SILENT": "true", "WANDB_MODE": "offline"})
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads((run / "metrics.json").read_text())

    # TensorBoard: the per-D losses, overlaid in one Custom Scalars chart; the sample grids
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0}).Reload()
    tags = tb.Tags()
    assert {"d/loss/0", "d/loss/1", "g/loss"} <= set(tags["scalars"])
    assert [e.step for e in tb.Scalars("d/loss/0")] == [2, 4, 6]
    assert "agg/weights/mean" not in tags["scalars"]  # 1/K by construction
    assert [e.step for e in tb.Images("samples")] == [3, 6]
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    layouts = [t for t in tags["tensors"] if t == metadata.CONFIG_SUMMARY_TAG]
    assert layouts
    layout = layout_pb2.Layout()
    layout.ParseFromString(tb.Tensors(metadata.CONFIG_SUMMARY_TAG)[0].tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["D loss, each discriminator"] == [r"^d/loss/\d+$"]

    # CSV: every logged number, the same values as TensorBoard's
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    d0 = [(int(x["step"]), float(x["value"])) for x in rows if x["key"] == "d/loss/0"]
    assert d0 == [(e.step, pytest.approx(e.value, rel=1e-6)) for e in tb.Scalars("d/loss/0")]
    assert {x["step"] for x in rows if x["key"] == "eval_raw/modes_covered"} == {"3", "6"}

    # W&B offline: the run's history steps and values, its config and the saved files
    (run_file,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    history, config = [], {}
    for rec in wandb_records(run_file):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "run":
            config = {u.key: json.loads(u.value_json) for u in rec.run.config.update}
    logged = [(h["_step"], h["d/loss/0"]) for h in history if "d/loss/0" in h]
    assert logged == [(s, pytest.approx(v, rel=1e-6)) for s, v in d0]
    assert config["train.seed"] == 0 and config["discriminators.count"] == 2  # ints as ints
    assert (run_file.parent / "files" / "metrics.json").is_file()

    # MLflow: params, metrics per step, the sample grids and metrics.json as artifacts, through MLflow's client
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    (found,) = client.search_runs([client.get_experiment_by_name("gan-bench").experiment_id])
    assert found.info.run_id == (run / "mlflow_run_id").read_text().strip() and found.info.status == "FINISHED"
    assert found.data.params["train.seed"] == "0" and found.data.params["discriminators.count"] == "2"
    history = client.get_metric_history(found.info.run_id, "d/loss/0")
    assert sorted((m.step, m.value) for m in history) == [(s, pytest.approx(v, rel=1e-6)) for s, v in d0]
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert "metrics.json" in artifacts and "samples" in artifacts
    grids = {Path(a.path).name for a in client.list_artifacts(found.info.run_id, "samples")}
    assert grids == {p.name for p in (run / "samples").glob("*.png")}
    assert record["iterations"] == 6


def test_a_sweeps_runs_are_named_by_the_overrides_that_differ(tmp_path):
    """TensorBoard names a sweep's runs after their folders: the job number and the swept values, not the keys every
    job shares; MLflow's runs get the same label (no number), and so do W&B's (the same run_label)."""
    pytest.importorskip("mlflow")
    sweep, store = tmp_path / "sweep", f"sqlite:///{tmp_path / 'mlruns.db'}"
    r = cli("train", "-m", *RING, "train.iterations=2", "eval.metrics=[]", "train.seed=1", "aggregation=avg,hv",
            "logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={store}", f"hydra.sweep.dir={sweep}",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    labels = ["aggregation=avg", "aggregation=hv"]  # train.seed=1 and RING's keys: the same for every job
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    runs = EventMultiplexer().AddRunsFromDirectory(str(sweep)).Runs()
    assert sorted(runs) == [f"{i}_{label}" for i, label in enumerate(labels)]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    found = client.search_runs([client.get_experiment_by_name("gan-bench").experiment_id])
    assert sorted(run.info.run_name for run in found) == labels


def test_a_logger_whose_package_is_missing_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    from gan_bench.errors import ConfigError
    from gan_bench.loggers.base import needs

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"logger=wandb needs the wandb package: pip install 'gan-bench\[wandb\]'"):
        needs("wandb", "wandb")


def test_csv_logger_resumed_keeps_only_rows_up_to_its_checkpoint(tmp_path):
    from gan_bench.loggers.csv_file import CSV

    first = CSV(tmp_path, "run", start=0)
    for step in (10, 20, 30):
        first.scalars({"g/loss": step / 10}, step)
    first.close()  # killed after 30, its checkpoint at 20
    again = CSV(tmp_path, "run", start=20)
    again.scalars({"g/loss": 9.0}, 30)
    again.close()
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [(r["step"], r["value"]) for r in rows] == [("10", "1.0"), ("20", "2.0"), ("30", "9.0")]


def test_an_unknown_logger_option_lists_the_available_ones(tmp_path):
    r = cli("train", "logger=nope", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2 and "logger" in r.stderr and "tensorboard" in r.stderr and "mlflow" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
