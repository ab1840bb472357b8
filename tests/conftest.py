from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# one thread per test process and per process a test starts, unless OMP_NUM_THREADS says otherwise: the suite runs
# one xdist worker per core, so more threads only compete for the same cores (set before torch is imported)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# isort: off
import gan_bench  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE: before torch is imported, or libgomp ignores it)
# isort: on
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


def compose(overrides: list[str] | tuple[str, ...] = ()):
    """The config `gan-bench train OVERRIDES` would run with (the same composition and error messages)."""
    from gan_bench.launch import compose_config

    return compose_config(list(overrides))


# the device the device-marked tests train and evaluate on: `python -m pytest --device cuda` runs those tests (the
# composition of every optimizer, aggregation, loss and stabiliser, resume, the metric registry) on the GPU
DEVICE = ["train.device=cpu"]
TORCH_DEVICE = [torch.device("cpu")]

# small, fast settings for end-to-end runs on 2 CPU cores
TINY = ["model.generator.width=8", "model.discriminator.width=8", "dataset.resolution=8", "train.batch_size=16",
        "train.log_every=2", "train.sample_every=1000", "train.checkpoint_every=1000", "train.n_grid=16",
        "train.progress=off", *DEVICE]


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", choices=("cpu", "cuda"),
                     help="run the tests marked 'device' on this device (cuda: only those, skipped without a GPU)")


def pytest_configure(config):
    config.addinivalue_line("markers", "device: also runs on the GPU with --device cuda")
    device = config.getoption("--device")
    DEVICE[:] = [f"train.device={device}"]
    TINY[-1] = DEVICE[0]
    TORCH_DEVICE[:] = [torch.device(device)]


def pytest_collection_modifyitems(config, items):
    if config.getoption("--device") != "cuda":
        return
    skip = pytest.mark.skip(reason="--device cuda: no CUDA device here")
    items[:] = [item for item in items if item.get_closest_marker("device")]
    for item in items:
        if not torch.cuda.is_available():
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    return TORCH_DEVICE[0]


def cli(*args: str, cwd: Path | None = None, timeout: float = 300,
        env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gan_bench", *args], cwd=cwd or REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def cli_here(capsys, *args: str) -> subprocess.CompletedProcess:
    """``gan-bench ARGS`` run by ``gan_bench.cli.main`` in this process, stdout and stderr captured: for the CLI's
    refusals, which end before anything is built or written, and for ``report --no-files`` (it only reads); what a
    process adds, the exit status and the stream the line goes to, is the same code: ``sys.exit(main())``
    (tests/test_config.py runs one refusal as a process)."""
    from gan_bench.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


@pytest.fixture
def compose_cfg():
    return compose


@pytest.fixture(autouse=True)
def _own_metric_registry():
    """Metrics a test registers (plug-in tests) are gone after it, whichever tests share this process."""
    from gan_bench.metrics import registry

    saved = dict(registry._REGISTRY), dict(registry.METRICS)
    yield
    for table, before in zip((registry._REGISTRY, registry.METRICS), saved):
        table.clear()
        table.update(before)
