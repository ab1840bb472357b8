"""The fault suite: real CLI processes broken in every way a long GAN run breaks — kill -9 (also in the middle of a
checkpoint write), NaN at a chosen iteration (stop and rollback), SIGTERM and SIGINT, a full disk, a failing job in a
sweep, corrupt data, and a folder or a run that belongs to someone else. Each case checks the exit code, the one-line
message, status.json, that nothing good was lost or overwritten, and (where the run goes on) a bit-exact result."""
from __future__ import annotations

import gzip
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

from conftest import REPO, cli, cli_here
from test_train import POINTS, _assert_same, _weights

RING = ["dataset=ring8", "model=mlp", *POINTS]


def _status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gan_bench", "train", *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_terminal_signals)


def _terminal_signals() -> None:
    """The child starts as from a terminal, with Python's own Ctrl-C handler, even when pytest runs in the
    background (where the shell makes the children ignore SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def _straight(tmp: Path, iterations: int, *args: str) -> dict:
    r = cli("train", f"train.iterations={iterations}", *args, f"hydra.run.dir={tmp / 'straight'}")
    assert r.returncode == 0, r.stderr[-2000:]
    return _weights(tmp / "straight")


# -- kill -9 ------------------------------------------------------------------------------------------------------
def test_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint_and_resumes_bit_exactly(tmp_path):
    run, args = tmp_path / "run", [*RING, "train.checkpoint_every=4", "optimizer=extragradient"]
    proc = _start("train.iterations=1000", *args, f"hydra.run.dir={run}", env={"GAN_BENCH_FAULT": "pause_in_write@8"})
    ckpts = run / "checkpoints"
    deadline = time.time() + 120
    while not list(ckpts.glob("*.paused")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert list(ckpts.glob("*.paused")), "the write never reached its pause"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = [p for p in ckpts.iterdir() if p.name.startswith(".last.pt.") and p.suffix == ".tmp"]
    assert stale, "the kill left the half-written temporary file"
    assert torch.load(ckpts / "last.pt", weights_only=True)["iteration"] == 4  # the previous one, intact
    assert _status(run)["state"] == "running" and _status(run)["checkpoint_iteration"] == 4
    r = cli("train", f"resume={run}", "train.iterations=10")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not any(p.exists() for p in stale), "the next start removes what the kill left"
    _assert_same(_weights(run), _straight(tmp_path, 10, *args))


# -- divergence ---------------------------------------------------------------------------------------------------
def test_nan_stops_the_run_keeps_the_good_checkpoint_and_writes_strict_json(tmp_path):
    run = tmp_path / "run"
    env = {"GAN_BENCH_FAULT": "nan@6"}
    r = cli("train", "train.iterations=40", *RING, "train.checkpoint_every=4", f"hydra.run.dir={run}", env=env)
    assert r.returncode == 3
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("gan-bench: error: diverged: non-finite loss, gradient or parameter detected at iteration")
    assert "the last good checkpoint is at iteration 4" in line
    status = _status(run)
    assert status["state"] == "diverged" and status["checkpoint_iteration"] == 4
    sd = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert sd["iteration"] == 4 and all(torch.isfinite(t).all() for t in sd["G"].values() if t.is_floating_point())
    text = (run / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["iterations"] == 4  # written with the last good state, never with the diverged one


def test_nan_rolls_back_on_a_fresh_recorded_stream_and_resumes_bit_exactly(tmp_path):
    run, args = tmp_path / "run", [*RING, "train.checkpoint_every=4", "train.on_nan=rollback",
                                   "train.rollback_lr_factor=0.5"]
    r = cli("train", "train.iterations=12", *args, f"hydra.run.dir={run}", env={"GAN_BENCH_FAULT": "nan@6"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "rolled back to iteration 4 with seed" in r.stdout + r.stderr
    m = json.loads((run / "metrics.json").read_text())
    assert m["rollbacks"] == [{"detected_at": 6, "resumed_from": 4, "seed": 7919, "lr_factor": 0.5}]
    assert m["iterations"] == 12 and _status(run)["state"] == "finished"
    sd = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in sd["G"].values() if t.is_floating_point())
    assert [g["lr"] for g in sd["optimizer"]["optimizers"]["G"]["param_groups"]] == [pytest.approx(2e-4 * 0.5)]
    # a rolled-back run resumes exactly like any other: interrupt at 12, resume to 16, against one go to 16
    r = cli("train", f"resume={run}", "train.iterations=16")
    assert r.returncode == 0, r.stderr[-2000:]
    straight = tmp_path / "straight"
    r = cli("train", "train.iterations=16", *args, f"hydra.run.dir={straight}", env={"GAN_BENCH_FAULT": "nan@6"})
    assert r.returncode == 0, r.stderr[-2000:]
    _assert_same(_weights(run), _weights(straight))


def test_rollbacks_are_bounded(tmp_path):
    run = tmp_path / "run"
    r = cli("train", "train.iterations=40", *RING, "train.checkpoint_every=4", "train.on_nan=rollback",
            "train.max_rollbacks=0", f"hydra.run.dir={run}", env={"GAN_BENCH_FAULT": "nan@6"})
    assert r.returncode == 3 and "train.max_rollbacks=0 rollbacks used" in r.stderr
    assert _status(run)["state"] == "diverged"


# -- signals ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig,code,name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_a_signal_finishes_the_step_checkpoints_records_and_resumes_bit_exactly(tmp_path, sig, code, name):
    """Both signals stop the run the same way (exit status, status.json, checkpoint at the step); the resume that
    follows is the same code for both, so it is checked bit-exactly after SIGTERM only."""
    run, args = tmp_path / "run", [*RING, "train.checkpoint_every=1000", "optimizer=optimistic"]
    proc = _start("train.iterations=100000", *args, f"hydra.run.dir={run}")
    _wait_for(run / "status.json", proc)
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    status = _status(run)
    done = status["iteration"]
    assert status["state"] == "interrupted" and status["reason"] == f"{name} at iteration {done}"
    assert status["checkpoint_iteration"] == done and status["resume_command"] == f"gan-bench train resume={run}"
    assert f"continue with: gan-bench train resume={run}" in err.strip().splitlines()[-1]
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["iteration"] == done
    if sig != signal.SIGTERM:
        return
    r = cli("train", f"resume={run}", f"train.iterations={done + 3}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert _status(run)["state"] == "finished"
    _assert_same(_weights(run), _straight(tmp_path, done + 3, *args))


# -- a full disk ----------------------------------------------------------------------------------------------------
def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    run = tmp_path / "run"
    r = cli("train", "train.iterations=40", *RING, "train.checkpoint_every=4", f"hydra.run.dir={run}",
            env={"GAN_BENCH_FAULT": "write_error@8"})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == (f"gan-bench: error: no space left on the device while writing {run}/checkpoints/last.pt; "
                         "the previous checkpoint at iteration 4 is intact")
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["iteration"] == 4
    assert not [p for p in (run / "checkpoints").iterdir() if p.name != "last.pt"]  # no temporary left
    assert _status(run)["state"] == "failed" and "no space left" in _status(run)["reason"]


# -- sweeps -------------------------------------------------------------------------------------------------------
def test_a_failing_job_does_not_stop_the_sweep_and_the_report_lists_it(tmp_path):
    sweep = tmp_path / "sweep"
    r = cli("train", "-m", "aggregation=hv", "aggregation.delta=0.5,1.5,2.0", "discriminators.count=2",
            "train.iterations=3", *RING, f"hydra.sweep.dir={sweep}")
    assert r.returncode == 1, r.stderr[-2000:]
    assert "1 job(s) of the sweep failed" in r.stderr
    assert f"{sweep}/0_aggregation.delta=0.5: failed: aggregation.delta=0.5 is impossible: hypervolume needs " \
        "delta > 1" in r.stderr
    for job in ("1_aggregation.delta=1.5", "2_aggregation.delta=2.0"):
        assert json.loads((sweep / job / "metrics.json").read_text())["iterations"] == 3
        assert _status(sweep / job)["state"] == "finished"
    assert _status(sweep / "0_aggregation.delta=0.5")["state"] == "failed"
    r = cli("report", str(sweep), "--no-files")
    assert r.returncode == 0, r.stderr
    assert "failed" in r.stdout + r.stderr and "aggregation.delta=0.5 is impossible" in r.stdout + r.stderr


# -- corrupt data ---------------------------------------------------------------------------------------------------
def _image_folder(root: Path, n: int = 20, bad: str = "broken.png") -> Path:
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    (root / bad).write_bytes(b"this is not an image")
    return root / bad


IMAGES = ["dataset=image_folder", "dataset.resolution=8", "train.batch_size=4", "model.generator.width=8",
          "model.discriminator.width=8", "train.progress=off", "train.iterations=6", "train.log_every=2",
          "train.checkpoint_every=1000", "train.sample_every=1000", "train.n_grid=4"]


@pytest.mark.parametrize("in_memory", [True, False], ids=["in_memory", "streamed"])
def test_an_unreadable_image_is_one_line_naming_the_file_or_skipped(tmp_path, in_memory):
    bad = _image_folder(tmp_path / "imgs")
    base = [*IMAGES, f"dataset.root={tmp_path / 'imgs'}", f"dataset.in_memory={str(in_memory).lower()}"]
    r = cli("train", *base, f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith(f"gan-bench: error: cannot read image {bad} (UnidentifiedImageError") and \
        lines[-1].endswith("add dataset.on_bad_file=skip"), r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    if in_memory:  # found while loading, before the run's folder exists: nothing is written
        assert not (tmp_path / "run").exists()
    else:  # found by a loader worker while training (it could be late in a long run): the run records why it failed
        status = _status(tmp_path / "run")
        assert status["state"] == "failed" and f"cannot read image {bad}" in status["reason"]
    r = cli("train", *base, "dataset.on_bad_file=skip", f"hydra.run.dir={tmp_path / 'skip'}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"skipped unreadable image {bad}" in r.stdout + r.stderr
    assert str(bad) in json.loads((tmp_path / "skip" / "metrics.json").read_text())["data"]["skipped_files"]


def test_a_truncated_idx_gz_is_one_line_naming_the_file(tmp_path, capsys):
    root = tmp_path / "fmnist"
    root.mkdir()
    for part, body in (("images-idx3", b"\x00\x00\x08\x03" + (60).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
                        + bytes(60 * 784)), ("labels-idx1", b"\x00\x00\x08\x01" + (60).to_bytes(4, "big") + bytes(60))):
        blob = gzip.compress(body)
        (root / f"train-{part}-ubyte.gz").write_bytes(blob[: len(blob) // 2] if part == "images-idx3" else blob)
    r = cli_here(capsys, "train", "dataset=fashion_mnist", f"dataset.root={root}", "dataset.download=false",
            "train.iterations=2", "train.batch_size=4", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"gan-bench: error: {root}/train-images-idx3-ubyte.gz is truncated or corrupt (EOFError")
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


# -- someone else's folder, someone else's run ------------------------------------------------------------------------
def test_a_bad_launch_into_a_folder_of_logs_deletes_nothing(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.log").write_text("my notes")
    (folder / "train.log").write_text("an earlier log")
    before = _digests(folder)
    for bad in (["aggregation=hv", "aggregation.delta=0.5"],  # a bad value
                ["dataset=image_folder", f"dataset.root={tmp_path}/no"],  # data that is not there
                ["+train.iteratons=5"]):  # an unknown key
        r = cli_here(capsys, "train", *bad, f"hydra.run.dir={folder}")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert _digests(folder) == before and sorted(p.name for p in folder.iterdir()) == ["notes.log", "train.log"]


def test_a_refused_relaunch_writes_nothing_and_resume_keeps_the_run_config(tmp_path, capsys):
    run = tmp_path / "run"
    r = cli("train", "train.iterations=3", *RING, "loss=hinge", f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr[-2000:]
    before = _digests(run)
    r = cli_here(capsys, "train", "train.iterations=3", *RING, "loss=ls", f"hydra.run.dir={run}")
    assert r.returncode == 2
    assert "already holds a run" in r.stderr and "nothing was written" in r.stderr
    assert _digests(run) == before  # .hydra/config.yaml, overrides.yaml, hydra.yaml included
    r = cli_here(capsys, "train", f"resume={run}", "loss=ls")
    assert r.returncode == 2 and "cannot change loss when resuming" in r.stderr
    r = cli("train", f"resume={run}", "train.iterations=5")
    assert r.returncode == 0, r.stderr[-2000:]
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["loss"]["_target_"] == "gan_bench.losses.Hinge" and config["train"]["iterations"] == 5
    assert "loss=hinge" in (run / ".hydra" / "overrides.yaml").read_text()  # the launch record was never touched
    r = cli_here(capsys, "report", str(run), "--by", "loss", "--no-files")
    assert r.returncode == 0 and "hinge" in r.stdout, r.stdout + r.stderr


def test_a_run_killed_before_its_first_checkpoint_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    proc = _start("train.iterations=100000", *RING, "train.checkpoint_every=100000", f"hydra.run.dir={run}")
    _wait_for(run / "status.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = cli_here(capsys, "train", f"resume={run}")
    assert r.returncode == 2
    assert r.stderr.strip() == f"gan-bench: error: no checkpoint in {run}: expected {run}/checkpoints/last.pt"
    r = cli_here(capsys, "report", str(run), "--no-files")
    assert "interrupted" in r.stdout + r.stderr  # a running status whose process is gone


def test_stale_temporaries_are_only_ours(tmp_path):
    from gan_bench.files import remove_stale_temporaries

    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"half")
    (tmp_path / "notes.tmp").write_text("a user's file")
    (tmp_path / ".hidden").write_text("a user's file")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".last.pt.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "notes.tmp"]
