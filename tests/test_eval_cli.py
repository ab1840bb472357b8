"""Metrics during and after training: eval.every, best tracking, `gan-bench eval`, `gan-bench classifier train`."""
from __future__ import annotations

import json

from conftest import TINY, cli, cli_here, compose
from gan_bench.train import train

RING = ["dataset=ring8", "model=mlp", "model.generator.width=16", "model.discriminator.width=16", "model.z_dim=4",
        "dataset.n_points=512", "train.batch_size=32", "train.progress=off", "train.log_every=2",
        "train.sample_every=1000", "train.checkpoint_every=1000", "optimizer.averaging.uniform=true"]


def test_modes_evaluated_during_training_for_each_generator(tmp_path):
    # ema 0.1: the initial G's share of the average is 0.1^2 = 1 % at iteration 2, below 5 %: evaluated from there
    out = train(compose(["train.iterations=4", "eval.every=2", "eval.metrics=[modes]", "eval.n_samples=300",
                         "eval.generators=[raw,ema,uniform]", "optimizer.averaging.ema=0.1", *RING]), tmp_path)
    entries = out["eval"]
    assert [(e["iteration"], e["generator"]) for e in entries] == [
        (2, "raw"), (2, "ema"), (2, "uniform"), (4, "raw"), (4, "ema"), (4, "uniform")]
    for e in entries:
        assert 0 <= e["modes_covered"] <= 8 and 0 <= e["high_quality"] <= 1
        assert e["protocol"]["modes"] == out["protocol"]["modes"]  # each value with how it was measured
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(tmp_path)).Reload()
    about = tb.Tensors("eval_ema/about/text_summary")[0].tensor_proto.string_val[0].decode()
    assert about.startswith("the averaged generator: an exponential moving average") and "decay 0.1" in about
    assert "eval_raw/about/text_summary" not in tb.Tags()["tensors"]


def test_the_ema_generator_waits_for_its_warm_up(tmp_path):
    """ema 0.5 from iteration 2: the initial G's share 0.5^(t-2) is below 5 % from t = 2 + 5 = 7 (0.5^5 = 3 %)."""
    from gan_bench.train import ema_ready_at

    cfg = compose(["train.iterations=8", "eval.every=2", "eval.metrics=[modes]", "eval.n_samples=100",
                   "eval.generators=[raw,ema]", "optimizer.averaging.ema=0.5", "optimizer.averaging.start=2",
                   "train.log_every=2", *RING])
    out = train(cfg, tmp_path)
    assert [(e["iteration"], e["generator"]) for e in out["eval"]] == [
        (2, "raw"), (4, "raw"), (6, "raw"), (8, "raw"), (8, "ema")]
    log = (tmp_path / "train.log").read_text()
    assert log.count("G ema skipped: the average still holds") == 3 and "evaluated from iteration 7" in log

    from types import SimpleNamespace

    assert ema_ready_at(SimpleNamespace(iteration=0, cfg=cfg)) == 7


def test_eval_command_appends_and_keeps_the_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    train(compose(["train.iterations=2", *RING]), run)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    r = cli("eval", str(run), "eval.metrics=[modes]", "eval.n_samples=200", "eval.generators=[raw]")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((run / "metrics.json").read_text())
    assert m["eval"][-1]["generator"] == "raw" and "modes_covered" in m["eval"][-1]
    assert m["eval"][-1]["source"].startswith("gan-bench eval")
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    r = cli_here(capsys, "eval", str(run))
    assert r.returncode == 2 and "eval.metrics" in r.stderr
    r = cli_here(capsys, "eval", str(run), "eval.metrix=[modes]")
    assert r.returncode == 2 and "metrix" in r.stderr and "Traceback" not in r.stderr
    r = cli_here(capsys, "eval", str(run), "eval.metrics=[fidd]")
    assert r.returncode == 2 and "fidd" in r.stderr


def test_classifier_train_then_classifier_fid_in_training(tmp_path, capsys):
    out = tmp_path / "cls.pt"
    r = cli("classifier", "train", "dataset=digits", "dataset.resolution=8", "classifier.epochs=3",
            f"classifier.out={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file() and "test accuracy" in r.stdout
    acc = float(r.stdout.split("test accuracy ")[1].split("%")[0])
    assert acc > 50  # far above chance (10 %): the classifier learned the digits
    r = cli_here(capsys, "classifier", "train", "dataset=digits", "dataset.resolution=8", f"classifier.out={out}")
    assert r.returncode == 2 and "exists" in r.stderr
    res = train(compose(["train.iterations=2", *TINY, "eval.metrics=[fid_classifier]", "eval.n_samples=100",
                         f"eval.classifier={out}", "eval.generators=[raw]"]), tmp_path / "run")
    fid = res["eval"][-1]["fid_classifier"]
    assert fid > 0 and res["best"]["fid_classifier"]["value"] == fid
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
