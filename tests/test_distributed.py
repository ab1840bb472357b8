"""Data-parallel training with torchrun on the CPU (gloo, 2 processes): the same global batch split over two ranks
trains the same G and Ds as one process (the game averages every gradient; HV/GMAN weights, MGD's per-D rows and
feature-matching means come from global values), a 2-rank run resumes, and rank 0 alone writes."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, cli, compose
from test_train import _weights

POINTS = ["dataset=ring8", "model=mlp", "model.generator.width=16", "model.discriminator.width=16", "model.z_dim=4",
          "dataset.n_points=512", "train.batch_size=32", "train.log_every=2", "train.sample_every=1000",
          "train.checkpoint_every=1000", "train.progress=off", "train.measure_flops=false", "discriminators.count=3",
          "train.device=cpu"]


def _free_port() -> int:
    """A port no other process listens on now (tests may run in parallel workers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                           f"--master_port={_free_port()}", "-m", "gan_bench", "train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _why(r: subprocess.CompletedProcess) -> str:
    """A failed torchrun's story: its first lines (a rank's own error) and its last (the agent's summary)."""
    return r.stderr if len(r.stderr) < 6000 else f"{r.stderr[:3000]}\n[...]\n{r.stderr[-3000:]}"


def _close(a: dict, b: dict, atol: float = 1e-5) -> None:
    for part in ("G", "D"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            torch.testing.assert_close(a[part][k].float(), b[part][k].float(), atol=atol, rtol=0, msg=f"{part}.{k}")


@pytest.mark.parametrize("case", [  # HV with feature matching and Adam: test_a_two_rank_run_resumes_... below
    ["aggregation=mgd", "optimizer=extragradient", "optimizer.lookahead.k=2"],
    ["aggregation=gman_auto", "optimizer=svre", "optimizer.rule.epoch_length=3", "optimizer.base.lr=0.05"],
], ids=["mgd-extragradient-lookahead", "gman_auto-svre"])
def test_two_ranks_train_what_one_process_trains(tmp_path, case):
    args = [*POINTS, "train.iterations=6", *case]
    r = torchrun(*args, f"hydra.run.dir={tmp_path / 'two'}")
    assert r.returncode == 0, _why(r)
    r = cli("train", *args, f"hydra.run.dir={tmp_path / 'one'}")
    assert r.returncode == 0, _why(r)
    two, one = _weights(tmp_path / "two"), _weights(tmp_path / "one")
    assert two["it"] == one["it"] == 6
    _close(two, one)
    cost = json.loads((tmp_path / "two" / "metrics.json").read_text())["cost"]
    assert cost["world_size"] == 2 and cost["devices"] == ["cpu", "cpu"]


def test_a_two_rank_run_resumes_and_rank_0_alone_writes(tmp_path):
    """HV with feature matching and alternating Adam, 4 iterations on 2 ranks, resumed on 2 ranks to 8: the G and Ds
    of one process trained 8 iterations, and the evaluation of one process on the same samples."""
    args = [*POINTS, "aggregation=hv", "stabilizers.feature_matching.weight=0.5", "train.checkpoint_every=4",
            "eval.metrics=[modes]", "eval.n_samples=300",
            "eval.batch_size=64", "eval.every=4", "eval.generators=[raw]"]
    run = tmp_path / "two"
    r = torchrun(*args, "train.iterations=4", f"hydra.run.dir={run}")
    assert r.returncode == 0, _why(r)
    r = torchrun(f"resume={run}", "train.iterations=8")
    assert r.returncode == 0, _why(r)
    r = cli("train", *args, "train.iterations=8", f"hydra.run.dir={tmp_path / 'one'}")
    assert r.returncode == 0, _why(r)
    _close(_weights(run), _weights(tmp_path / "one"))
    cost = json.loads((run / "metrics.json").read_text())["cost"]
    assert cost["world_size"] == 2 and cost["devices"] == ["cpu", "cpu"]
    # the metric sees all 300 samples, split over the ranks and gathered: the one-process value on the same samples
    two = json.loads((run / "metrics.json").read_text())["eval"]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["eval"]
    assert [(e["iteration"], e["modes_covered"]) for e in two] == [(e["iteration"], e["modes_covered"]) for e in one]
    for a, b in zip(two, one):
        assert a["high_quality"] == pytest.approx(b["high_quality"], abs=1 / 300 + 1e-9)
    assert len(list(run.glob("events.out.tfevents.*"))) == 2  # the launch and the resume, both by rank 0
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["iteration"] == 8
    assert r.stdout.count("[gan-bench] done") == 1


def test_what_cannot_be_exact_under_torchrun_is_refused_with_the_reason(tmp_path):
    """A real 2-rank launch that must be refused: one line with the reason, a non-zero exit, no checkpoint."""
    r = torchrun("dataset=digits", "dataset.resolution=8", "train.iterations=2", "train.device=cpu",
                 f"hydra.run.dir={tmp_path / 'c'}")
    assert r.returncode != 0 and "the generator's BatchNorm mixes the batch" in r.stderr
    assert not Path(tmp_path / "c" / "checkpoints").exists()


@pytest.mark.parametrize("override,reason", [
    ("model.discriminator.minibatch_kernels=4", "minibatch discrimination and model.discriminator.norm=batch mix the "
                                                "batch"),
    ("train.batch_size=33", "train.batch_size=33 is the global batch: it must divide evenly over the 2 processes"),
    ("stabilizers.unrolled.steps=2", "stabilizers.unrolled.steps > 0 is not supported under torchrun"),
])
def test_each_setting_a_data_parallel_run_cannot_do_exactly_is_refused(monkeypatch, override, reason):
    """The same refusals as the torchrun launch above, each checked where a run is built (as rank 0 of 2 sees it)."""
    from gan_bench import distributed
    from gan_bench.errors import ConfigError
    from gan_bench.run import Run

    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ConfigError, match=re.escape(reason)):
        Run(compose([*POINTS, override]), None)


def test_a_rank_leaves_after_every_exit_handler_with_its_code(tmp_path):
    """distributed.leave: each rank runs the exit handlers (a library's own, here one that writes a file; ours, the
    process group left together) and then exits with the command's code, skipping the interpreter's finalisation."""
    script = tmp_path / "leave.py"
    script.write_text(
        "import atexit, os, sys\n"
        "from gan_bench import distributed\n"
        "distributed.setup('cpu')\n"
        "rank = distributed.rank()\n"
        f"atexit.register(lambda: open(os.path.join({str(tmp_path)!r}, f'handler{{rank}}'), 'w').write('ran'))\n"
        "code = distributed.leave(3 + rank)\n"
        "print('not reached', file=sys.stderr)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        f"--master_port={_free_port()}", str(script)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "not reached" not in r.stderr, r.stderr[-3000:]
    assert re.search(r"exitcode\s*:\s*[34]\b", r.stderr), r.stderr[-3000:]  # a rank's own code, not an abort (-6)
    assert (tmp_path / "handler0").read_text() == (tmp_path / "handler1").read_text() == "ran"
