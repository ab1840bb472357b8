"""Weights & Biases (``pip install 'gan-bench[wandb]'``): offline by default — the run is written under
``RUN/wandb/`` and sent later with ``wandb sync RUN/wandb/offline-run-*`` — or ``logger.wandb.mode=online``.
A resumed gan-bench run continues the same W&B run (its id is kept in ``RUN/wandb/gan_bench_run_id``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from gan_bench.loggers.base import LOGGERS, Logger, best_values, needs


@LOGGERS.register("wandb")
class WandB(Logger):
    """Weights & Biases, offline by default (RUN/wandb/; wandb sync sends it)."""

    def __init__(self, run_dir: Path, run_name: str, start: int = 0, project: str = "gan-bench",
                 entity: Optional[str] = None, group: Optional[str] = None, tags: Optional[list[str]] = None,
                 mode: str = "offline"):
        needs("wandb", "wandb")
        self.run_dir, self.start = Path(run_dir), start
        self.settings = {"project": project, "entity": entity, "group": group, "tags": list(tags or []),
                         "mode": mode, "name": run_name}
        self.run: Any = None

    def config(self, params: Mapping[str, Any], swept: list[str]) -> None:
        import os
        import secrets

        import wandb

        folder = self.run_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "gan_bench_run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
        id_file.write_text(run_id)
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(dir=str(self.run_dir), id=run_id, resume="allow", config=dict(params),
                              notes=f"swept: {', '.join(swept)}" if swept else None, **self.settings)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def image(self, tag: str, png: Path, step: int) -> None:
        import wandb

        self.run.log({tag: wandb.Image(str(png))}, step=step)

    def text(self, tag: str, text: str, step: int) -> None:
        self.run.summary[tag] = text

    def finish(self, record: Mapping[str, Any], files: list[Path], status: str) -> None:
        self.run.summary.update({**best_values(record), "status": status})
        for f in files:
            self.run.save(str(f), base_path=str(self.run_dir), policy="now")

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
