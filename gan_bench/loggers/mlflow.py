"""MLflow (``pip install 'gan-bench[mlflow]'``): one MLflow run per gan-bench run, in the tracking store
``logger.mlflow.tracking_uri`` (default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns.db`` in the folder
gan-bench was started from; ``mlflow ui --backend-store-uri sqlite:///mlruns.db`` shows it). Params are the
flattened config, metrics are logged per step, the sample grids and metrics.json are the run's artifacts. A resumed
gan-bench run continues the same MLflow run (its id is kept in ``RUN/mlflow_run_id``)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Optional

from gan_bench.loggers.base import LOGGERS, Logger, best_values, needs

STATUS = {"finished": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "interrupted": "KILLED"}


@LOGGERS.register("mlflow")
class MLflow(Logger):
    """MLflow tracking (default store: sqlite:///mlruns.db here): params, metrics per step, artifacts."""

    def __init__(self, run_dir: Path, run_name: str, start: int = 0, tracking_uri: Optional[str] = None,
                 experiment: str = "gan-bench", tags: Optional[dict[str, str]] = None):
        needs("mlflow", "mlflow")
        import os

        from mlflow.tracking import MlflowClient

        self.run_dir = Path(run_dir)
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlruns.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        id_file = self.run_dir / "mlflow_run_id"
        if start > 0 and id_file.is_file():
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(experiment_id, run_name=run_name,
                                                 tags={"gan_bench.run_dir": str(self.run_dir), **(tags or {})}
                                                 ).info.run_id
            id_file.write_text(self.run_id)
        self.resumed = start > 0

    def config(self, params: Mapping[str, Any], swept: list[str]) -> None:
        from mlflow.entities import Param

        if self.resumed:  # MLflow params are immutable: the resumed run's are already there
            return
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])
        if swept:
            self.client.set_tag(self.run_id, "gan_bench.swept", ",".join(swept))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in values.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def image(self, tag: str, png: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(png), artifact_path=tag)

    def finish(self, record: Mapping[str, Any], files: list[Path], status: str) -> None:
        self.scalars(best_values(record), int(record.get("iterations") or 0))
        for f in files:
            self.client.log_artifact(self.run_id, str(f))
        self.client.set_terminated(self.run_id, status=STATUS.get(status, "FINISHED"))
