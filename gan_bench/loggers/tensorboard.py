"""TensorBoard event files in the run folder (the default logger): scalars, sample grids, the K discriminators'
curves overlaid in one chart (the Custom Scalars tab), and the run's HParams session at the end."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from gan_bench.loggers.base import LOGGERS, Logger

#: per-discriminator series (``KEY/0`` ... ``KEY/K-1``) drawn as one multi-line chart each in Custom Scalars
OVERLAID = {"d/loss": "D loss, each discriminator", "g/l_k": "G loss against each discriminator",
            "grad_norm/D": "gradient norm, each discriminator", "agg/weights": "aggregation weight of each D",
            "agg/alpha": "MGD weight of each D"}


@LOGGERS.register("tensorboard")
class TensorBoard(Logger):
    """TensorBoard event files in the run folder: scalars, samples, K Ds overlaid, HParams."""

    def __init__(self, run_dir: Path, run_name: str, start: int = 0, flush_secs: int = 30):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir, self.flush_secs = Path(run_dir), flush_secs
        # purge_step drops events written after the checkpoint a resumed run starts from (e.g. before a kill)
        self.tb = SummaryWriter(log_dir=str(run_dir), purge_step=start or None, flush_secs=flush_secs)
        self._layout = False

    def config(self, params: Mapping[str, Any], swept: list[str]) -> None:
        self.params, self.swept = dict(params), list(swept)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        if not self._layout:
            self._add_layout(values)
        for k, v in values.items():
            self.tb.add_scalar(k, v, step)

    def _add_layout(self, values: Mapping[str, float]) -> None:
        charts = {title: ["Multiline", [rf"^{key}/\d+$"]] for key, title in OVERLAID.items()
                  if f"{key}/0" in values}
        if charts:
            self.tb.add_custom_scalars({"discriminators": charts})
            self._layout = True

    def image(self, tag: str, png: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(png) as im:
            self.tb.add_image(tag, np.asarray(im.convert("RGB")), step, dataformats="HWC")

    def text(self, tag: str, text: str, step: int) -> None:
        self.tb.add_text(tag, text, step)

    def restart(self, step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.tb.close()
        self.tb = SummaryWriter(log_dir=str(self.run_dir), purge_step=step, flush_secs=self.flush_secs)

    def finish(self, record: Mapping[str, Any], files: list[Path], status: str) -> None:
        from gan_bench.report.hparams import log_run_hparams

        log_run_hparams(self.tb, self.run_dir, dict(record), status=status)

    def close(self) -> None:
        self.tb.flush()
        self.tb.close()
