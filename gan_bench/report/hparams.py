"""A run's hyperparameters and results for TensorBoard's HParams tab.

:func:`log_hparams` writes into the run's own event files (not into a sub-folder, as ``SummaryWriter.add_hparams``
does) the HParams plugin's three summaries (experiment, session start with the hyperparameters, session end with
the run's status) and one scalar per metric, tagged ``hparams/<name>``. Pointing TensorBoard at a sweep folder then
shows each run of the sweep as one session of the HParams tab, its swept values and results side by side.

The training loop calls :func:`log_run_hparams` once at the end of a run, e.g. in ``gan_bench.train.train`` after the
final ``write_metrics`` and before ``logger.close()``::

    log_run_hparams(logger.tb, run_dir, metrics_out, status="finished", step=run.iteration)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from gan_bench.report.collect import RunRecord, number, read_overrides
from gan_bench.report.protocol import select_protocol
from gan_bench.report.tables import config_value, direction, eval_value, evaluated_metrics, option_name

METRIC_PREFIX = "hparams/"
# recorded for every run besides the swept keys (those a config lacks are left out)
MAIN_KEYS = ("dataset.name", "model.generator", "model.discriminator", "discriminators.count", "aggregation", "loss",
             "optimizer.rule", "optimizer.base", "optimizer.base.lr", "train.batch_size", "train.n_dis",
             "train.iterations", "train.seed")
STATUS = {"finished": "STATUS_SUCCESS", "running": "STATUS_RUNNING", "diverged": "STATUS_FAILURE",
          "failed": "STATUS_FAILURE", "interrupted": "STATUS_UNKNOWN"}

Scalar = bool | float | int | str


def hparam_value(value: Any) -> Scalar:
    """A value the HParams plugin takes: bools, finite numbers and strings as they are, anything else as text
    (None as ``"null"``, lists and mappings as JSON)."""
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return hparam_value(value.item())
    if isinstance(value, float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def run_hparams(config: Mapping[str, Any], overrides: Sequence[str], main_keys: Sequence[str] = MAIN_KEYS
                ) -> dict[str, Scalar]:
    """The run's hyperparameters: each override's key (``+``/``~`` dropped, ``hydra.*`` skipped) with its value in
    the resolved ``config`` (a config group: its ``name``, else the option chosen), then ``main_keys``."""
    out: dict[str, Scalar] = {}
    for line in overrides:
        key, _, text = str(line).partition("=")
        key = key.lstrip("+~")
        if key.startswith("hydra."):
            continue
        found, value = config_value(dict(config), key.replace("/", "."))
        if isinstance(value, dict):  # a group chosen on the command line: the option's name
            value = option_name(value["_target_"]) if "_target_" in value else text
        out[key] = hparam_value(value if found else text)
    for key in main_keys:
        found, value = config_value(dict(config), key)
        chosen = key in out or key.replace(".", "/") in out  # e.g. optimizer/rule=svre was an override
        if isinstance(value, dict) and "_target_" in value:
            value = option_name(value["_target_"])
        if found and not chosen and not isinstance(value, dict):
            out[key] = hparam_value(value)
    return out


def run_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """A run's results from its metrics.json: ``best/M`` (best evaluation, any generator) and ``final/M`` (last
    evaluation, its best generator) per evaluation metric, measured as the run's training measured it (values that
    ``gan-bench eval`` appended another way left out), the final losses and the time figures."""
    record = select_protocol([RunRecord(Path("."), {}, dict(metrics))])[0][0].metrics
    out: dict[str, float | None] = {}
    for metric in sorted(evaluated_metrics([RunRecord(Path("."), {}, record)])):
        if direction(metric, (record,)):
            out[f"best/{metric}"] = eval_value(record, metric, "best", "best")
            out[f"final/{metric}"] = eval_value(record, metric, "best", "last")
        else:
            out[f"final/{metric}"] = eval_value(record, metric, "raw", "last")
    final = record.get("final") if isinstance(record.get("final"), dict) else {}
    for key in ("g/loss", "d/loss/mean", "d/loss"):
        out[f"final/{key.replace('/', '_')}"] = number(final.get(key))
    cost = record.get("cost") if isinstance(record.get("cost"), dict) else {}
    out["time/wall_clock_s"] = number(record.get("wall_clock_s"))
    for key in ("seconds_per_iteration", "wall_clock_to_best_fid_s"):
        out[f"time/{key}"] = number(cost.get(key))
    return {k: v for k, v in out.items() if v is not None}


def _summary(tag: str, **plugin_data: Any) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    content = plugin_data_pb2.HParamsPluginData(**plugin_data)
    value = Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(content), tensor=metadata.NULL_TENSOR)
    return Summary(value=[value])


def hparams_summaries(hparams: Mapping[str, Scalar], metric_tags: Sequence[str], status: str,
                      differs: Sequence[str] = ()) -> list[Any]:
    """The experiment, session-start and session-end summaries of the HParams plugin. ``differs``: the keys the
    sweep varies, listed first and marked ``differs`` — TensorBoard's HParams tab shows the first five hparams of the
    experiment, those that differ first. Integers are recorded as text, so the tab shows ``4``, not ``4.0000``."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo()
    infos = []
    for key in sorted(hparams, key=lambda k: k not in differs):  # stable: the swept keys first, in their order
        value = hparams[key]
        if isinstance(value, bool):
            start.hparams[key].bool_value, kind = value, "DATA_TYPE_BOOL"
        elif isinstance(value, int):
            start.hparams[key].string_value, kind = str(value), "DATA_TYPE_STRING"
        elif isinstance(value, float):
            start.hparams[key].number_value, kind = float(value), "DATA_TYPE_FLOAT64"
        else:
            start.hparams[key].string_value, kind = str(value), "DATA_TYPE_STRING"
        infos.append(api_pb2.HParamInfo(name=key, type=api_pb2.DataType.Value(kind), differs=key in differs))
    experiment = api_pb2.Experiment(hparam_infos=infos,
                                    metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t))
                                                  for t in metric_tags])
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(STATUS.get(status, "STATUS_UNKNOWN")))
    return [_summary(metadata.EXPERIMENT_TAG, experiment=experiment),
            _summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            _summary(metadata.SESSION_END_INFO_TAG, session_end_info=end)]


def log_hparams(writer_or_log_dir: Any, hparams: Mapping[str, Any], metrics: Mapping[str, Any], *,
                status: str = "finished", step: int | None = None, differs: Sequence[str] = ()) -> dict[str, float]:
    """Record a run's ``hparams`` and ``metrics`` for TensorBoard's HParams tab, in the run's own event files.

    ``writer_or_log_dir``: the run's ``torch.utils.tensorboard.SummaryWriter`` (left open, flushed) or its folder
    (a writer is opened and closed). ``hparams`` values are recorded as bools, numbers or strings (anything else as
    text); ``metrics`` as scalars ``hparams/<name>`` at ``step`` (non-finite or non-numeric values left out).
    ``status``: the run's state (finished, running, interrupted, diverged, failed). Returns the metrics written,
    by tag."""
    from torch.utils.tensorboard import SummaryWriter

    values = {k: hparam_value(v) for k, v in hparams.items()}
    scalars = {f"{METRIC_PREFIX}{k}": v for k, v in ((k, number(v)) for k, v in metrics.items()) if v is not None}
    own = not isinstance(writer_or_log_dir, SummaryWriter)
    writer = SummaryWriter(log_dir=str(writer_or_log_dir)) if own else writer_or_log_dir
    try:
        file_writer = writer._get_file_writer()  # what SummaryWriter.add_hparams uses too
        for summary in hparams_summaries(values, list(scalars), status, differs):
            file_writer.add_summary(summary, step)
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, step)
        writer.flush()
    finally:
        if own:
            writer.close()
    return scalars


def log_run_hparams(writer_or_log_dir: Any, run_dir: str | Path, metrics: Mapping[str, Any] | None = None, *,
                    status: str = "finished", step: int | None = None) -> dict[str, float]:
    """:func:`log_hparams` for a gan-bench run: the overrides of ``run_dir/.hydra/overrides.yaml`` and the main
    keys, valued from ``metrics["config"]``, and :func:`run_metrics` of ``metrics`` (default: the run's
    metrics.json), at ``step`` (default: its iterations)."""
    run_dir = Path(run_dir)
    if metrics is None:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    config = metrics.get("config") if isinstance(metrics.get("config"), dict) else {}
    hparams = run_hparams(config, read_overrides(run_dir) or [])
    if step is None and isinstance(metrics.get("iterations"), int):
        step = metrics["iterations"]
    return log_hparams(writer_or_log_dir, hparams, run_metrics(metrics), status=status, step=step,
                       differs=swept_in_sweep(run_dir))


def swept_in_sweep(run_dir: Path) -> list[str]:
    """The keys a sweep varies (several values among its jobs, e.g. ``train.seed``), read from the sweep folder's
    ``multirun.yaml`` above a job's folder; [] for a single run."""
    from gan_bench.errors import GanBenchError
    from gan_bench.report.collect import read_multirun

    if not (run_dir.parent / "multirun.yaml").is_file():
        return []
    try:
        found = read_multirun(run_dir.parent)
    except GanBenchError:
        return []
    values: dict[str, set[str]] = {}
    for job in (found[0] if found else []):
        for line in job:
            key, _, value = line.partition("=")
            values.setdefault(key.lstrip("+~"), set()).add(value)
    return [k for k, v in values.items() if len(v) > 1 and not k.startswith("hydra.")]
