"""Cost accounting: FLOPs of one training iteration (torch.utils.flop_counter), peak memory."""
from __future__ import annotations

import resource
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks cannot run inside the batched
    ``autograd.grad(..., is_grads_batched=True)`` calls of MGD and the gradient penalties. We only need the total."""

    parents = {"Global"}

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *args: Any) -> bool:
        return False


def count_flops(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn()`` once, counting the FLOPs of its matmuls/convolutions (forward and backward)."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        out = fn()
    return out, counter.get_total_flops()


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated on ``device``, or the process's peak resident set size on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
