"""Generator parameter averaging (Yazici et al., ICLR 2019, "The unusual effectiveness of averaging in GAN training").

* ``"ema"``: ``avg <- beta * avg + (1 - beta) * w`` at every update from iteration ``start`` on;
* ``"uniform"``: the running mean of the iterates since ``start``, ``avg <- avg + (w - avg) / n``.

Before ``start`` the average simply follows the raw parameters. Buffers (e.g. batch-norm running
statistics) are copied from the raw module at every update, never averaged.
"""
from __future__ import annotations

import copy
from typing import Any

import torch

from .gda import GameOptimizerConfigError

KINDS = ("ema", "uniform")


class ParamAverage:
    """An averaged copy (``self.averaged``) of ``module``'s parameters, updated by :meth:`update`."""

    def __init__(self, module: torch.nn.Module, kind: str, beta: float = 0.999, start: int = 0) -> None:
        if kind not in KINDS:
            raise GameOptimizerConfigError(f"averaging kind={kind!r} is not valid; choose one of: {', '.join(KINDS)}")
        if kind == "ema" and not 0.0 <= beta < 1.0:
            raise GameOptimizerConfigError(f"averaging beta={beta} is impossible: it must lie in [0, 1)")
        if int(start) != start or start < 0:
            raise GameOptimizerConfigError(f"averaging start={start} is impossible: it must be an integer >= 0")
        self.module = module
        self.kind, self.beta, self.start = kind, float(beta), int(start)
        self.averaged = copy.deepcopy(module).requires_grad_(False)
        self.count = 0  # iterates averaged so far (uniform)

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the current parameters of ``module``; ``step`` is the training iteration just finished."""
        averaging = step >= self.start
        if averaging and self.kind == "uniform":
            self.count += 1
        for avg, raw in zip(self.averaged.parameters(), self.module.parameters(), strict=True):
            if not averaging or not avg.is_floating_point():
                avg.copy_(raw)
            elif self.kind == "ema":
                avg.add_(raw - avg, alpha=1.0 - self.beta)
            else:
                avg.add_(raw - avg, alpha=1.0 / self.count)
        for avg_buf, raw_buf in zip(self.averaged.buffers(), self.module.buffers(), strict=True):
            avg_buf.copy_(raw_buf)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "beta": self.beta,
            "start": self.start,
            "count": self.count,
            "averaged": {key: value.clone() for key, value in self.averaged.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["kind"] != self.kind:
            raise GameOptimizerConfigError(f"cannot load a {state['kind']!r} average into a {self.kind!r} one")
        self.count = int(state["count"])
        self.averaged.load_state_dict(state["averaged"])
