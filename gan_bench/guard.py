"""What keeps a long run trustworthy: signals end it cleanly, and a diverged state never reaches a checkpoint.

* :class:`SignalGuard`: SIGTERM (SLURM, Kubernetes, ``timeout``), SIGINT (Ctrl-C) and SIGUSR2 (what SLURM sends
  before a time limit or preemption, with submitit's requeue handler) only set a flag; the loop finishes the current
  step, writes a checkpoint at that iteration, records the status, hands the signal to the handler that was there
  before (submitit requeues the job) and exits with 128 + the signal number. A second Ctrl-C stops at once.
* Divergence: the game ANDs a device-side flag with the finiteness of every loss and gradient it computes and keeps
  the largest |loss| of a discriminator's game (no host synchronisation per step); :func:`health` reads both, every
  parameter and the latest losses, at each log, sample, evaluation and checkpoint boundary — always before anything
  is written. A game has diverged when anything is non-finite, when a loss blew up while staying finite (|loss| >
  ``train.max_abs_loss``), or when it collapsed: every discriminator's loss exactly 0 while G's loss is above
  ``train.collapse_g_loss``, at ``train.collapse_checks`` consecutive checks. ``train.on_nan=stop`` ends the run
  (status ``diverged`` with the reason, exit 3); ``rollback`` reloads the last good state and continues on a fresh,
  recorded random stream (learning rates times ``train.rollback_lr_factor``), at most ``train.max_rollbacks``
  times.
"""
from __future__ import annotations

import io
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gan_bench.errors import GanBenchError

if TYPE_CHECKING:
    from gan_bench.run import Run

SIGNAL_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}
if hasattr(signal, "SIGUSR2"):
    SIGNAL_NAMES[signal.SIGUSR2] = "SIGUSR2"


class Interrupted(Exception):
    """A run ended by a signal after writing its checkpoint; the process should exit with 128 + signum."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class Diverged(GanBenchError):
    """A run whose losses, gradients or parameters became non-finite (and that could not be rolled back)."""


class SignalGuard:
    """Within the block, SIGTERM and SIGINT set ``signum`` instead of ending the process (main thread only)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def pass_on(self, signum: int) -> None:
        """Call the handler that was installed before ours (e.g. submitit's checkpoint-and-requeue), if any."""
        previous = self._old.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:  # Python's own raises KeyboardInterrupt
            previous(signum, None)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signum = signum

    def __enter__(self) -> "SignalGuard":
        try:
            self._old = {s: signal.signal(s, self._handle) for s in SIGNAL_NAMES}
        except ValueError:  # not the main thread (e.g. a launcher's worker thread): leave the signals alone
            self._old = {}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


@dataclass
class Health:
    """What one check of the run's state found (read from the device in one sync)."""

    finite: bool  # every loss and gradient since the last check, and every parameter now, is finite
    peak_loss: float  # the largest |loss| of a discriminator's game since the last check
    d_loss_zero: bool  # every discriminator's latest loss is exactly 0
    g_loss: float  # the mean of G's latest K losses (nan before G's first step)

    def blown_up(self, max_abs_loss: float) -> bool:
        return self.finite and self.peak_loss > max_abs_loss

    def saturated(self, g_bound: float) -> bool:
        return self.finite and self.d_loss_zero and self.g_loss > g_bound


def health(run: "Run", reset: bool = True) -> Health:
    """The run's :class:`Health` (one host sync); ``reset`` starts the next check's loss peak from 0."""
    params = list(list(run.G.parameters()) + list(run.D.parameters()) + list(run.agg.parameters()))
    game = run.game
    finite = torch.stack([torch.isfinite(p).all() for p in params]).all() & game.health
    nan = torch.full((), float("nan"), dtype=torch.float64, device=run.device)
    d, g = game.last.get("d/loss"), game.last.get("g/l_k")
    values = torch.stack([finite.double(), game.peak_loss.double(),
                          (d == 0).all().double() if d is not None else nan * 0,
                          g.double().mean() if g is not None else nan]).tolist()
    if reset:
        game.peak_loss = torch.zeros_like(game.peak_loss)
    return Health(bool(values[0]), values[1], bool(values[2] == 1), values[3])


def healthy(run: "Run", max_abs_loss: float) -> bool:
    """True when nothing is non-finite and no loss blew up (for a checkpoint at an arbitrary iteration)."""
    h = health(run, reset=False)
    return h.finite and not h.blown_up(max_abs_loss)


def snapshot(run: "Run") -> bytes:
    """The run's whole state (its checkpoint) in memory, for a rollback before the first checkpoint."""
    buffer = io.BytesIO()
    torch.save(run.state_dict(), buffer)
    return buffer.getvalue()


def restore(run: "Run", state: bytes | dict) -> None:
    from gan_bench.loading import load_tensors

    sd = load_tensors(io.BytesIO(state), "the in-memory state") if isinstance(state, bytes) else state
    sd.setdefault("path", "the last good state")
    run.load_state_dict(sd)
    run.game.health = torch.ones((), dtype=torch.bool, device=run.device)
    run.game.peak_loss = torch.zeros((), device=run.device)


def fresh_stream(run: "Run") -> int:
    """Seed the random streams anew after a rollback (a different seed per rollback, derived from train.seed)."""
    from gan_bench.run import seed_everything

    seed = run.cfg.train.seed + 7919 * (len(run.rollbacks) + 1)
    seed_everything(seed)
    return seed


def scale_learning_rates(run: "Run", factor: float) -> None:
    for optimizer in run.opt.optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] *= factor
