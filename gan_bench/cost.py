"""Cost accounting: FLOPs of one training iteration (torch.utils.flop_counter), peak memory."""
from __future__ import annotations

import resource
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count


class _GlobalOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks cannot run inside the batched
    ``autograd.grad(..., is_grads_batched=True)`` calls of MGD and the gradient penalties. We only need the total."""

    parents = {"Global"}

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *args: Any) -> bool:
        return False


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **_: Any) -> int:
    """torch's convolution-backward count, except that the weight gradient costs what the forward convolution
    costs: torch's formula ignores ``groups`` there, which counts the K discriminators' convolutions (one grouped
    convolution under vmap) K times too high. ``w_shape`` already holds in_channels / groups."""
    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1]:
        flops += conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return flops


def count_flops(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn()`` once, counting the FLOPs of its matmuls/convolutions (forward and backward)."""
    counter = FlopCounterMode(display=False,
                              custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flop})
    counter.mod_tracker = _GlobalOnly()
    with counter:
        out = fn()
    return out, counter.get_total_flops()


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated on ``device``, or the process's peak resident set size on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
