"""Data-parallel training with torch.distributed: ``torchrun --nproc_per_node=N -m gan_bench train ...``.

Every rank holds the whole game (G, the K discriminators, the optimizer state) and draws the same random numbers as a
single process would: the whole global batch of indices and noise vectors, of which it keeps its slice
(:func:`my_slice`). The game averages every gradient it computes over the ranks (:func:`mean_`), so each optimizer's
update rule receives the global gradient and updates identically on every rank; what depends on whole-batch values is
computed from global values (the K losses that set HV/GMAN weights, MGD's per-D gradient rows, feature-matching
means). Rank 0 alone writes. Without ``torchrun`` (one process) every function here is the identity.
"""
from __future__ import annotations

import atexit
import os
from typing import Any, Sequence

import torch
import torch.distributed as dist

from gan_bench.errors import ConfigError


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    return rank() == 0


def launched() -> bool:
    """True when this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str) -> None:
    """Join the process group torchrun describes (gloo on the CPU, nccl on CUDA); once per process."""
    if not launched() or dist.is_initialized():
        return
    cuda = device in ("cuda", "auto") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    atexit.register(_teardown)


def _teardown() -> None:
    """Leave the process group before the interpreter exits (gloo's threads otherwise may abort the process at exit:
    "terminate called without an active exception")."""
    if dist.is_initialized():
        if dist.get_backend() == "gloo":  # leave together: a rank whose peer already tore its pairs down may abort
            try:
                from datetime import timedelta

                dist.monitored_barrier(timeout=timedelta(seconds=60))
            except Exception:  # a peer that failed or left first: nothing left to wait for
                pass
        dist.destroy_process_group()


def leave(code: int) -> int:
    """The end of a command under torchrun: every exit handler runs (the libraries' own, logging's flush, ours:
    :func:`_teardown`, all ranks leaving the process group together), then the process exits with ``code`` at once,
    skipping the interpreter's finalisation. There, with no Python frame left, torch's gloo objects are destroyed in no
    set order and a rank whose run had finished aborted now and then ("terminate called without an active
    exception": exit -6, which torchrun reports as a failed run; about 1 in 80 loaded 2-rank launches here). One
    process (no torchrun): ``code``, as usual."""
    if not active():
        return code
    import atexit
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def device_for(name: str) -> torch.device | None:
    """This rank's CUDA device under torchrun (None: the usual choice)."""
    if launched() and name in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None


def my_slice(n: int) -> slice:
    """This rank's contiguous part of ``n`` items, in rank order (parts differ by at most one item; training batches
    divide evenly, :func:`check_batch`, so that the average of the ranks' gradients is the global one)."""
    if not active():
        return slice(0, n)
    base, extra = divmod(n, world_size())
    start = rank() * base + min(rank(), extra)
    return slice(start, start + base + (1 if rank() < extra else 0))


def check_batch(batch_size: int, what: str = "train.batch_size") -> None:
    if active() and batch_size % world_size():
        raise ConfigError(f"{what}={batch_size} is the global batch: it must divide evenly over the {world_size()} "
                          "processes")


def mean_(tensors: Sequence[torch.Tensor]) -> None:
    """Average tensors over the ranks, in place (one all-reduce of one flat buffer)."""
    if not active() or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset: offset + t.numel()].view_as(t))
        offset += t.numel()


def mean(t: torch.Tensor) -> torch.Tensor:
    """The average of ``t`` over the ranks (a new tensor, no gradient)."""
    out = t.detach().clone()
    mean_([out])
    return out


def straight_through_mean(t: torch.Tensor) -> torch.Tensor:
    """The global average's value with this rank's gradient path: after the game averages the gradients over the
    ranks, a function of it differentiates exactly like the function of the global average in one process."""
    return t if not active() else t + (mean(t) - t.detach())


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of ``t`` concatenated in rank order (the ranks may hold different numbers of rows)."""
    if not active():
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    largest = int(max(s.item() for s in sizes))
    padded = torch.zeros((largest, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


def all_true(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on every rank."""
    if not active():
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def first_signal(signum: int | None, device: torch.device) -> int | None:
    """A signal any rank received (the largest number), so that all ranks stop at the same step."""
    if not active():
        return signum
    t = torch.tensor([signum or 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item()) or None


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


def devices(device: torch.device) -> list[str]:
    """Every rank's device, in rank order (for metrics.json)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if not active():
        return [name]
    names: list[Any] = [None] * world_size()
    dist.all_gather_object(names, name)
    return names


def prepare_models(cfg: Any, G: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """What a data-parallel run cannot do exactly is refused with the reason; G's BatchNorm is synchronised on CUDA."""
    if not active():
        return G
    d, unrolled = cfg.model.discriminator, cfg.stabilizers.get("unrolled")
    if d.get("minibatch_kernels", 0) or d.get("norm") == "batch":
        raise ConfigError("minibatch discrimination and model.discriminator.norm=batch mix the batch, and under "
                          "torchrun each process sees only its slice of it: turn them off for a data-parallel run")
    if unrolled is not None and unrolled.get("steps", 0):
        raise ConfigError("stabilizers.unrolled.steps > 0 is not supported under torchrun: the unrolled D steps would "
                          "need the global batch's gradient at every unrolled step")
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in G.modules()):
        if device.type != "cuda":
            raise ConfigError("the generator's BatchNorm mixes the batch; under torchrun on the CPU (gloo) it cannot "
                              "be synchronised: use model.generator.norm=none or vbn, or run on CUDA (SyncBatchNorm)")
        G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G)
    return G
