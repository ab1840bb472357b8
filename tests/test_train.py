"""End-to-end training: artefacts, seeding, exact resume (in-process and after SIGKILL), bad checkpoints."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import DEVICE, REPO, TINY, cli, cli_here, compose
from gan_bench.errors import CheckpointError, ConfigError
from gan_bench.train import train

POINTS = ["model.generator.width=16", "model.discriminator.width=16", "model.z_dim=4", "train.batch_size=32",
          "train.log_every=2", "train.sample_every=1000", "train.checkpoint_every=1000", "train.progress=off",
          "dataset.n_points=512", *DEVICE]

pytestmark = pytest.mark.device


def _run(tmp: Path, overrides: list[str]) -> dict:
    cfg = compose(overrides)
    return train(cfg, tmp)


def _weights(run_dir: Path) -> dict:
    sd = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return {"G": sd["G"], "D": sd["D"], "opt": sd["optimizer"], "avg": sd["averages"], "it": sd["iteration"]}


def _assert_same(a, b, path="", rtol: float = 0.0) -> None:
    """Equal tensors (bit for bit; ``rtol`` > 0: within that relative tolerance, for a file another CPU wrote)."""
    if isinstance(a, torch.Tensor):
        if rtol:
            scale = b.detach().abs().max().clamp_min(1e-12) if b.is_floating_point() else 1
            assert torch.allclose(a, b, rtol=rtol, atol=rtol * float(scale)), f"differs at {path}"
        else:
            assert torch.equal(a, b), f"differs at {path}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}", rtol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]", rtol)
    else:
        assert a == b, f"{path}: {a} != {b}"


@pytest.mark.parametrize("dataset,model", [("digits", "dcgan"), ("ring8", "mlp"), ("grid25", "mlp")])
def test_every_embedded_dataset_trains_and_leaves_artefacts(tmp_path, dataset, model):
    base = TINY if model == "dcgan" else POINTS
    out = _run(tmp_path, [f"dataset={dataset}", f"model={model}", "train.iterations=4", *base])
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "samples" / "iter_0000004.png").stat().st_size > 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["iterations"] == 4 and m["final"]["g/loss"] == out["final"]["g/loss"]
    for key in ("flops_per_iteration", "params_G", "params_D_total", "peak_memory_mb", "seconds_per_iteration"):
        assert m["cost"][key] > 0, key


def test_tensorboard_holds_losses_per_discriminator(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _run(tmp_path, ["discriminators=d2", "aggregation=hv", "train.iterations=4", *TINY])
    ea = EventAccumulator(str(tmp_path))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    for tag in ("g/l_k/0", "g/l_k/1", "d/loss/0", "d/loss/1", "agg/eta", "agg/weights/0", "d/acc_real/0",
                "perf/iterations_per_s", "cost/flops_per_iteration"):
        assert tag in tags, (tag, sorted(tags))
    assert "samples" in ea.Tags()["images"]


def test_seeded_runs_are_identical_and_seeds_differ(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        _run(tmp_path / name, ["train.iterations=3", f"train.seed={seed}", *TINY])
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    _assert_same(a["G"], b["G"])
    assert not torch.equal(a["G"]["net.0.weight"], c["G"]["net.0.weight"])


RESUME_CASES = {
    "adam": [],
    "sgd_ndis2": ["optimizer=sgd", "train.n_dis=2"],
    "extragradient": ["optimizer=extragradient"],
    "optimistic": ["optimizer=optimistic"],
    "svre": ["optimizer=svre", "optimizer.rule.epoch_length=2", "dataset.n_points=256"],
    "lookahead_nested": ["optimizer=lookahead", "optimizer.lookahead.k=2", "optimizer.lookahead.k2=2",
                         "optimizer.averaging.uniform=true"],
    "hv_k3_hist": ["discriminators=d3" if False else "discriminators.count=3", "aggregation=hv",
                   "stabilizers.historical_averaging.weight=0.1"],
    "mgd_k2_gp": ["discriminators.count=2", "aggregation=mgd", "stabilizers.gradient_penalty.kind=wgan_gp",
                  "loss=wasserstein", "stabilizers.instance_noise.std=0.1"],
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_is_bit_identical(tmp_path, case):
    extra = ["dataset=ring8", "model=mlp", *POINTS, *RESUME_CASES[case]]
    _run(tmp_path / "full", ["train.iterations=6", *extra])
    _run(tmp_path / "part", ["train.iterations=3", *extra])
    _run(tmp_path / "part", ["train.iterations=6", "resume=true", *extra])
    full, part = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert full["it"] == part["it"] == 6
    _assert_same(full, part)


def test_kill_then_resume_is_bit_identical(tmp_path):
    """SIGKILL a CLI run mid-training, resume it with the CLI: same weights as an uninterrupted run."""
    args = ["dataset=ring8", "model=mlp", *POINTS, "train.checkpoint_every=3", "optimizer=extragradient"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "gan_bench", "train", "train.iterations=1000000", *args,
                             f"hydra.run.dir={run}"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # let it run on past the checkpoint, so the kill lands mid-training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "the run never wrote a checkpoint"
    done = torch.load(ckpt, map_location="cpu", weights_only=True)["iteration"]
    final = done + 4
    r = cli("train", f"resume={run}", f"train.iterations={final}")
    assert r.returncode == 0, r.stderr[-2000:]
    r = cli("train", "train.iterations=%d" % final, *args, f"hydra.run.dir={tmp_path / 'straight'}")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _weights(run), _weights(tmp_path / "straight")
    assert a["it"] == b["it"] == final
    _assert_same(a, b)
    log = (run / "train.log").read_text()
    assert f"resumed from {ckpt} at iteration {done}" in log, "the resume is recorded in the run's log"
    # the launch record is untouched
    assert "train.iterations=1000000" in (run / ".hydra" / "overrides.yaml").read_text()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_checkpoints_give_clear_errors_and_touch_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    r = cli("train", "train.iterations=2", *TINY, f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr
    ckpt, metrics = run / "checkpoints" / "last.pt", run / "metrics.json"
    good = ckpt.read_bytes()

    # incompatible config: other K, other architecture
    before = {p: _digest(p) for p in (ckpt, metrics)}
    r = cli_here(capsys, "train", f"resume={run}", "discriminators.count=3", "model.discriminator.width=16",
                 "train.iterations=4")
    assert r.returncode == 2
    assert "cannot change discriminators.count, model.discriminator.width when resuming" in r.stderr
    assert "only train.iterations" in r.stderr and "Traceback" not in r.stderr
    assert before == {p: _digest(p) for p in (ckpt, metrics)}

    # truncated
    ckpt.write_bytes(good[: len(good) // 2])
    before = {p: _digest(p) for p in (ckpt, metrics)}
    r = cli_here(capsys, "train", f"resume={run}", "train.iterations=4")
    assert r.returncode == 2 and "truncated or corrupt" in r.stderr and "Traceback" not in r.stderr
    assert before == {p: _digest(p) for p in (ckpt, metrics)}

    # garbage
    ckpt.write_bytes(b"not a checkpoint at all" * 10)
    r = cli_here(capsys, "train", f"resume={run}", "train.iterations=4")
    assert r.returncode == 2 and "corrupt" in r.stderr

    # missing
    r = cli_here(capsys, "train", f"resume={tmp_path / 'nowhere'}")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_existing_run_is_never_overwritten(tmp_path):
    _run(tmp_path, ["train.iterations=2", *TINY])
    before = _digest(tmp_path / "checkpoints" / "last.pt")
    with pytest.raises(ConfigError, match="already holds a run"):
        _run(tmp_path, ["train.iterations=2", *TINY])
    assert _digest(tmp_path / "checkpoints" / "last.pt") == before


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint intact and no temp file behind."""
    from gan_bench import checkpoint, files

    path = tmp_path / "last.pt"
    checkpoint.save_checkpoint(path, {"x": torch.ones(3)})
    before = _digest(path)

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "fsync", boom)
    with pytest.raises(files.WriteError, match="disk full while writing .*last.pt"):
        checkpoint.save_checkpoint(path, {"x": torch.zeros(3)})
    assert _digest(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    with pytest.raises(CheckpointError):
        checkpoint.load_checkpoint(tmp_path / "missing.pt")


def test_multirun_sweep_then_report(tmp_path):
    """`gan-bench train -m` writes a folder per job, named by its number and swept values, and `gan-bench report`
    tabulates them by the swept key."""
    sweep = tmp_path / "sweep"
    r = cli("train", "-m", "aggregation=avg,hv", "train.seed=1,2", "discriminators.count=2", "train.iterations=2",
            "eval.metrics=[modes]", "eval.n_samples=200", "eval.generators=[raw]", "dataset=ring8", "model=mlp",
            *POINTS,
            f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = ["0_aggregation=avg,train.seed=1", "1_aggregation=avg,train.seed=2", "2_aggregation=hv,train.seed=1",
            "3_aggregation=hv,train.seed=2"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == jobs
    for n in jobs:
        assert (sweep / n / "metrics.json").is_file() and (sweep / n / ".hydra" / "overrides.yaml").is_file()
    r = cli("report", str(sweep), "--format", "csv")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(rows) == 3, r.stdout  # header + one row per aggregation
    assert rows[1].startswith("avg") and rows[2].startswith("hv")
