"""Safe to share, safe to run twice — with real processes, as a user meets them: a checkpoint or run folder from
someone else runs no code (marker files that must not appear, a victim file that must keep its bytes), one process
per run folder (two processes racing for one folder, resume and eval of a run that is training, a sweep job whose
folder is in use), a run's record holds only that run, gan-bench's own format-2 checkpoints still resume exactly,
and a game that blew up or collapsed while staying finite is named as diverged."""
from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, cli, cli_here, compose
from gan_bench.train import train
from test_faults import RING, _digests, _start, _status
from test_train import _assert_same, _weights

DATA = Path(__file__).resolve().parent / "data"


class _Payload:
    """What a malicious file carries: unpickling it runs ``touch MARKER``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory) -> Path:
    """A finished 4-iteration ring8 run, made once for the tests that only read or copy it."""
    run = tmp_path_factory.mktemp("ring") / "run"
    train(compose(["train.iterations=4", *RING]), run)
    return run


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _last_line(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    return lines[-1] if lines else ""


# -- loading never runs code ----------------------------------------------------------------------------------------
def test_a_checkpoint_with_a_pickled_payload_is_refused_before_anything_runs(ring_run, tmp_path):
    run = _copy_run(ring_run, tmp_path / "shared")
    marker = tmp_path / "MARKER"
    ckpt = run / "checkpoints" / "last.pt"
    state = torch.load(ckpt, weights_only=True)  # gan-bench's own checkpoints are tensors and plain data only
    torch.save({**state, "extra": _Payload(marker)}, ckpt)
    before = _digests(run)
    for args in (["train", f"resume={run}", "train.iterations=6"], ["eval", str(run), "eval.metrics=[modes]"]):
        r = cli(*args)
        assert r.returncode == 2, r.stderr[-2000:]
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert _last_line(r) == (f"gan-bench: error: checkpoint {ckpt} holds objects other than tensors and plain "
                                 "data (posix.system); gan-bench loads only tensors and plain data from a file (it "
                                 "may come from anyone), so it was not loaded and nothing in it ran")
        assert not marker.exists(), "the checkpoint's payload ran"
    assert _digests(run) == before
    # a file that is not a gan-bench checkpoint at all: refused by the same rule before any refusal of its content
    bare = tmp_path / "model.pt"
    torch.save(_Payload(marker), bare)
    r = cli("eval", str(bare), "eval.metrics=[modes]")
    assert r.returncode == 2 and "holds objects other than tensors and plain data (posix.system)" in _last_line(r)
    assert not marker.exists() and not (tmp_path / "model.metrics.json").exists()


def test_every_torch_file_gan_bench_reads_refuses_a_payload(tmp_path):
    """Checkpoints (zip or a bare pickle), classifier files, Inception weights and the in-memory rollback state all
    go through one loader; each refuses a payload, in this process, without running it."""
    from gan_bench import guard
    from gan_bench.checkpoint import load_checkpoint
    from gan_bench.errors import UnsafeFileError
    from gan_bench.metrics.classifier import load_classifier
    from gan_bench.metrics.inception import _load_file

    marker = tmp_path / "MARKER"
    zipped, bare = tmp_path / "zipped.pt", tmp_path / "bare.pkl"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": _Payload(marker)}, zipped)
    bare.write_bytes(pickle.dumps({"format": 3, "x": _Payload(marker)}, protocol=4))
    for load in (load_checkpoint, load_classifier, _load_file):
        for path in (zipped, bare):
            with pytest.raises(UnsafeFileError, match=r"objects other than tensors and plain data \(posix.system\)"):
                load(path)
    with pytest.raises(UnsafeFileError):
        guard.restore(None, pickle.dumps(_Payload(marker)))
    assert not marker.exists()


def test_a_format_2_checkpoint_still_resumes_bit_exactly(tmp_path):
    """tests/data/format2_ring8_last.pt was written by gan-bench at checkpoint format 2 (numpy's RNG state as a
    numpy array, commit 8feea87): ring8, the mlp model at width 16, z 4, batch 32, 512 points, seed 3, 4 iterations.
    Resumed to 8 iterations it must equal a run of 8 iterations made now: to float rounding (rtol 1e-4), since its first
    4 iterations ran on the CPU that wrote it (another SIMD width sums in another order: an AVX-512 machine here gave
    last-bit differences); bit-exact resume on one machine is tests/test_train.py's and tests/test_faults.py's."""
    args = ["train.seed=3", "train.checkpoint_every=4", *RING]
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes((DATA / "format2_ring8_last.pt").read_bytes())
    from gan_bench.loading import load_tensors

    assert load_tensors(DATA / "format2_ring8_last.pt", "the test file")["format"] == 2
    r = cli("train", f"resume={run}", "train.iterations=8")
    assert r.returncode == 0, r.stderr[-2000:]
    straight = tmp_path / "straight"
    train(compose(["train.iterations=8", *args]), straight)
    _assert_same(_weights(run), _weights(straight), rtol=1e-4)
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["format"] == 3


# -- a run folder is data, not code -----------------------------------------------------------------------------------
def _with_config(run: Path, **changes) -> None:
    ckpt = run / "checkpoints" / "last.pt"
    state = torch.load(ckpt, weights_only=True)
    state["config"].update(changes)
    torch.save(state, ckpt)


def test_a_stored_config_builds_and_imports_nothing_the_user_did_not_name(ring_run, tmp_path, capsys,
                                                                          monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("a user's precious file")
    run = _copy_run(ring_run, tmp_path / "shared")
    _with_config(run, loss={"_target_": "builtins.open", "file": str(victim), "mode": "w"})
    r = cli("train", f"resume={run}", "train.iterations=6")
    assert r.returncode == 2, r.stderr[-2000:]
    assert _last_line(r) == ("gan-bench: error: the stored config names loss._target_=builtins.open, which is not a "
                             "registered loss option; a run folder is data, so it was not imported: if you trust it, "
                             "repeat loss._target_=builtins.open (or plugins=[its module]) on this command line — "
                             "nothing was run")
    assert victim.read_text() == "a user's precious file"

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    marker = tmp_path / "IMPORTED"
    (plugins / "their_metrics.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    run2 = _copy_run(ring_run, tmp_path / "shared2")
    _with_config(run2, plugins=["their_metrics"])
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{plugins}"}
    r = cli("eval", str(run2), "eval.metrics=[modes]", "eval.n_samples=200", env=env)
    assert r.returncode == 2 and "the stored config imports plugins=[their_metrics]" in _last_line(r)
    assert "repeat plugins=[their_metrics] on this command line" in _last_line(r)
    assert not marker.exists(), "a stored plug-in was imported"
    # the user repeats it: their choice, imported, and the evaluation runs (in this process)
    monkeypatch.syspath_prepend(str(plugins))
    r = cli_here(capsys, "eval", str(run2), "eval.metrics=[modes]", "eval.n_samples=200", "plugins=[their_metrics]")
    assert r.returncode == 0, r.stderr[-2000:]
    assert marker.read_text() == "ran"


def test_a_class_of_the_users_own_resumes_when_named_again(tmp_path, capsys, monkeypatch):
    from test_plugins import ENV, PLUGINS, RUN

    run = tmp_path / "run"
    own = ["model.discriminator._target_=my_gan_parts.TinyD", "+model.discriminator.hidden=16"]
    monkeypatch.syspath_prepend(str(PLUGINS))
    train(compose([*own, *RUN]), run)
    r = cli_here(capsys, "train", f"resume={run}", "train.iterations=4")
    assert r.returncode == 2 and "model.discriminator._target_=my_gan_parts.TinyD, which is not a registered " \
        "model/discriminator option" in r.stderr
    # the exact training command plus resume=: the repeated values are no change, the named class is trusted
    r = cli("train", *own, *RUN, "train.iterations=5", f"resume={run}", env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((run / "metrics.json").read_text())["iterations"] == 5


def test_report_builds_nothing_from_run_folders(ring_run, tmp_path):
    marker = tmp_path / "IMPORTED"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "their_metrics.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    run = _copy_run(ring_run, tmp_path / "sweep" / "0")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["config"]["plugins"] = ["their_metrics"]
    metrics["config"]["loss"] = {"_target_": "their_metrics.Anything"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    r = cli("report", str(tmp_path / "sweep"), "--no-files", env={"PYTHONPATH": f"{REPO}{os.pathsep}{plugins}"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert not marker.exists()


# -- one process per run folder ---------------------------------------------------------------------------------------
def _in_use(r: subprocess.CompletedProcess, run: Path, pid: int) -> bool:
    return (r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and
            _last_line(r).startswith(f"gan-bench: error: {run} is in use by process {pid} on {socket.gethostname()} "
                                     "(since ") and _last_line(r).endswith(
                "one process per run folder — wait for it to end or stop it; nothing was written"))


def test_a_run_folder_in_use_refuses_a_second_train_resume_and_eval(tmp_path, capsys):
    run = tmp_path / "run"
    a = _start("train.iterations=1000", *RING, "train.checkpoint_every=2", f"hydra.run.dir={run}",
               env={"GAN_BENCH_FAULT": "wait_for_signal@3"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and a.poll() is None and not (
                (run / "status.json").is_file() and _status(run).get("checkpoint_iteration") == 2):
            time.sleep(0.05)
        assert _status(run)["checkpoint_iteration"] == 2, "the run never reached its wait"
        names = sorted(p.name for p in run.rglob("*"))
        before = {k: v for k, v in _digests(run).items() if "tfevents" not in k}
        # the second process is this one: the lock is the OS's, held by process A
        for args in (["train", "train.iterations=5", *RING, "train.seed=1", f"hydra.run.dir={run}"],
                     ["train", f"resume={run}", "train.iterations=10"],
                     ["eval", str(run), "eval.metrics=[modes]", "eval.n_samples=200"]):
            r = cli_here(capsys, *args)
            assert _in_use(r, run, a.pid), (args[:2], r.stderr[-2000:])
        assert sorted(p.name for p in run.rglob("*")) == names
        assert {k: v for k, v in _digests(run).items() if "tfevents" not in k} == before
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait()
    # the OS let go of the lock with the process (no stale lock): the run is this process's to resume now
    # (tests/test_faults.py resumes runs after kill -9 as real processes)
    from gan_bench import runlock

    with runlock.hold(run):
        assert json.loads((run / runlock.LOCK_FILE).read_text())["pid"] == os.getpid()


def test_two_launches_into_one_folder_at_the_same_moment_make_one_run(tmp_path):
    run = tmp_path / "run"
    procs = {seed: _start("train.iterations=6", *RING, f"train.seed={seed}", f"hydra.run.dir={run}")
             for seed in (1, 2)}
    codes = {seed: (p.wait(timeout=240), p.stderr.read()) for seed, p in procs.items()}
    winners = [s for s, (code, _) in codes.items() if code == 0]
    assert len(winners) == 1, codes
    loser_code, loser_err = codes[3 - winners[0]]
    assert loser_code == 2 and ("is in use by process" in loser_err or "already holds a run" in loser_err), loser_err
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["train"]["seed"] == winners[0]
    assert f"train.seed={winners[0]}" in (run / ".hydra" / "overrides.yaml").read_text()


def test_a_sweep_job_whose_folder_is_in_use_is_refused_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    job0, job1 = sweep / "0_train.seed=1", sweep / "1_train.seed=2"
    a = _start("train.iterations=1000", *RING, "train.seed=1", "train.checkpoint_every=2",
               f'hydra.run.dir="{job0}"', env={"GAN_BENCH_FAULT": "wait_for_signal@3"})  # = and , need quotes
    try:
        deadline = time.time() + 120
        while time.time() < deadline and a.poll() is None and not (
                (job0 / "status.json").is_file() and _status(job0).get("checkpoint_iteration") == 2):
            time.sleep(0.05)
        before = {k: v for k, v in _digests(job0).items() if "tfevents" not in k}
        r = cli("train", "-m", "train.iterations=3", *RING, "train.seed=1,2", f"hydra.sweep.dir={sweep}")
        assert r.returncode == 1, r.stderr[-2000:]
        assert f"gan-bench: error: {job0} is in use by process {a.pid}" in r.stderr
        assert "Traceback" not in r.stderr and "Error executing job" not in r.stderr
        assert f"{job0}: refused: {job0} is in use by process {a.pid}" in r.stderr
        assert {k: v for k, v in _digests(job0).items() if "tfevents" not in k} == before  # .hydra/ too
        assert _status(job1)["state"] == "finished"
        assert "train.seed=2" in (job1 / ".hydra" / "overrides.yaml").read_text()
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait()


# -- a run's record holds only that run -------------------------------------------------------------------------------
def test_eval_of_a_checkpoint_that_is_not_the_runs_own_writes_a_record_beside_it(ring_run, tmp_path, capsys):
    run = _copy_run(ring_run, tmp_path / "run")
    other = _copy_run(ring_run, tmp_path / "other")
    _with_config(other, name="another run")
    (run / "extra").mkdir()
    (run / "extra" / "other.pt").write_bytes((other / "checkpoints" / "last.pt").read_bytes())
    metrics_before = (run / "metrics.json").read_bytes()
    args = ["eval.metrics=[modes]", "eval.n_samples=200", "eval.generators=[raw]"]
    r = cli_here(capsys, "eval", str(run / "extra" / "other.pt"), *args)
    assert r.returncode == 0, r.stderr
    assert (run / "metrics.json").read_bytes() == metrics_before  # the run's record is only the run's
    record = json.loads((run / "extra" / "other.metrics.json").read_text())
    assert record["name"] == "another run" and record["checkpoint"] == str((run / "extra" / "other.pt").resolve())
    assert [e["generator"] for e in record["eval"]] == ["raw"] and "modes_covered" in record["eval"][0]
    assert f"written to {run / 'extra' / 'other.metrics.json'}" in r.stdout
    # a second evaluation of the same file appends to its record; another file's record is never written into
    r = cli_here(capsys, "eval", str(run / "extra" / "other.pt"), *args)
    assert r.returncode == 0 and len(json.loads((run / "extra" / "other.metrics.json").read_text())["eval"]) == 2
    before = (run / "extra" / "other.metrics.json").read_bytes()
    r = cli_here(capsys, "eval", str(run / "checkpoints" / "last.pt"), *args, "--out",
                 str(run / "extra" / "other.metrics.json"))
    assert r.returncode == 2 and "is not a record of this checkpoint" in r.stderr
    assert (run / "extra" / "other.metrics.json").read_bytes() == before
    # a bare checkpoint outside any run folder: its own record beside it, nothing two levels up
    downloads = tmp_path / "downloads"
    (downloads / "ckpts").mkdir(parents=True)
    (downloads / "ckpts" / "model.pt").write_bytes((other / "checkpoints" / "last.pt").read_bytes())
    r = cli_here(capsys, "eval", str(downloads / "ckpts" / "model.pt"), *args)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in downloads.rglob("*")) == ["ckpts", "model.metrics.json", "model.pt"]
    # the run's own checkpoint: appended to its metrics.json
    r = cli_here(capsys, "eval", str(run / "checkpoints" / "last.pt"), *args)
    assert r.returncode == 0 and f"appended to {run / 'metrics.json'}" in r.stdout
    assert json.loads((run / "metrics.json").read_text())["eval"][-1]["source"].startswith("gan-bench eval")


# -- a collapsed game is named ---------------------------------------------------------------------------------------
def test_a_finite_blow_up_is_diverged_with_its_reason_and_rolls_back_on_request(tmp_path, capsys):
    run = tmp_path / "run"
    lr = ["optimizer.g.lr=1e6", "optimizer.d.lr=1e6"]
    r = cli("train", "train.iterations=20", *RING, *lr, f"hydra.run.dir={run}")
    assert r.returncode == 3, r.stderr[-2000:]
    assert _last_line(r).startswith("gan-bench: error: diverged: a loss blew up by iteration 2: a discriminator's "
                                    "game reached |loss| = ")
    assert "> train.max_abs_loss=1e+06" in _last_line(r)
    status = _status(run)
    assert status["state"] == "diverged" and status["reason"].startswith("a loss blew up by iteration 2")
    # the rollback policy: back to the start with learning rates 1e6 * 1e-8, and the run goes on
    m = train(compose(["train.iterations=20", *RING, *lr, "train.on_nan=rollback", "train.rollback_lr_factor=1e-8"]),
              tmp_path / "rolled")
    assert [(b["detected_at"], b["resumed_from"]) for b in m["rollbacks"]] == [(2, 0)]
    assert m["iterations"] == 20 and all(v is not None for v in m["final"].values())
    r = cli_here(capsys, "report", str(tmp_path), "--no-files")  # the report lists the diverged run and why
    assert r.returncode == 0 and "0/1" in r.stdout, r.stdout + r.stderr
    assert "diverged" in r.stdout and "a loss blew up by iteration 2" in r.stdout


def test_a_game_whose_discriminators_win_outright_is_named_collapsed(tmp_path):
    from gan_bench.guard import Diverged

    run = tmp_path / "run"
    cfg = compose(["train.iterations=300", "loss=hinge", "optimizer.d.lr=0.05", "train.log_every=5",
                   "train.progress=off", "train.device=cpu"])  # the default digits DCGAN, D's step 250 times Adam's
    with pytest.raises(Diverged) as err:
        train(cfg, run)
    assert "diverged: the game collapsed by iteration" in str(err.value)
    assert "every discriminator's loss is exactly 0 while G's loss is" in str(err.value)
    assert "at 3 consecutive checks (every 5 iterations)" in str(err.value)
    assert _status(run)["state"] == "diverged" and _status(run)["reason"] == str(err.value)[len("diverged: "):]


def test_gradient_norms_do_not_overflow():
    """grad_norm/G of finite float32 gradients is finite (it overflowed to inf, stored as null, with 1e24 losses)."""
    from gan_bench.runlog import scalars

    big = torch.full((1000,), 3e37)
    norm = torch.stack([g.double().pow(2).sum() for g in (big, big)]).sum().sqrt()
    assert scalars({"grad_norm/G": norm})["grad_norm/G"] == pytest.approx(3e37 * (2000 ** 0.5))
    assert sys.float_info.max > scalars({"grad_norm/G": norm})["grad_norm/G"] > torch.finfo(torch.float32).max
