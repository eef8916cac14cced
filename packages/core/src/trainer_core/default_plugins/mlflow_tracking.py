"""MLflow tracking: a metric sink plus the lifecycle and save hooks that give it params, tags and
checkpoint artifacts (``pip install 'trainer-core[mlflow]'``).

Enabled when ``MLFLOW_TRACKING_URI`` is set, when ``TRAINER_CORE_MLFLOW=1``, or when a trainer
passes ``sink_options={"mlflow": {...}}`` (keys ``tracking_uri``, ``experiment``). Without a
tracking URI the store is SQLite in the run directory (``mlflow.db``, artifacts in
``mlartifacts/``). The experiment is ``MLFLOW_EXPERIMENT_NAME``, else the package's name.

What is logged: every metric record (``<split>/<name>`` at its step), the resolved config as
params (flattened, ``a.b``), tags ``trainer_core.package``, ``.layout``, ``.config_hash`` and
``.run_id``, and each committed checkpoint's manifest as an artifact under
``checkpoints/<name>/manifest.json`` with a tag holding the checkpoint's path or URL.

Resume: MLflow cannot delete logged metric history, so a resumed run opens a **continuation
run**: a new MLflow run that first receives the previous run's history up to the resume step,
then the new records; it is tagged ``trainer_core.continues`` (the previous MLflow run id) and
``trainer_core.resumed_from_step``, and the previous run is tagged ``trainer_core.continued_by``
and ended as ``KILLED``. The newest run of a training run therefore holds each step once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from trainer_core.hookspecs import hookimpl

RECORD_FILE = "mlflow_run.json"  # the MLflow run this run directory logs to
_LIVE: dict[str, MlflowSink] = {}
_LOCK = threading.Lock()
_RESERVED = ("step", "epoch", "split", "time")


def mlflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def enabled(options: dict[str, Any]) -> bool:
    return bool(options) or bool(os.environ.get("MLFLOW_TRACKING_URI")) or os.environ.get("TRAINER_CORE_MLFLOW", "") not in ("", "0")


class _Off:
    def write(self, record: dict[str, Any]) -> None:
        pass

    def truncate_after(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def make_sink(run_dir: Any, **options: Any) -> Any:
    """The registered factory: an :class:`MlflowSink` when enabled, else a sink doing nothing."""
    if not enabled(options):
        return _Off()
    sink = MlflowSink(run_dir, **options)
    with _LOCK:
        _LIVE[str(run_dir)] = sink
    return sink


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: json.dumps(value) if not isinstance(value, str) else value}


class MlflowSink:
    """Metrics of one training run to one MLflow run (see the module docstring)."""

    def __init__(self, run_dir: Any, tracking_uri: str | None = None, experiment: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.run_dir = str(run_dir)
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.join(self.run_dir, 'mlflow.db')}"
        self.local_store = not (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.run_id: str | None = None
        self.resume_step: int | None = None
        self.previous: str | None = None
        self.pending: list[Any] = []
        self._lock = threading.Lock()

    # --- the run ------------------------------------------------------------------------------
    def _experiment_id(self, package: str) -> str:
        name = self.experiment or package or "trainer-core"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"file://{os.path.join(self.run_dir, 'mlartifacts')}" if self.local_store else None
        return self.client.create_experiment(name, artifact_location=location)

    def open(self, run: Any) -> str:
        """Create the MLflow run (once): params, tags, and on a resume the continued history."""
        with self._lock:
            if self.run_id is not None:
                return self.run_id
            from mlflow.entities import Param

            tags = {"trainer_core.package": run.package, "trainer_core.run_id": str(run.run_id or "")}
            if run.config_hash:
                tags["trainer_core.config_hash"] = run.config_hash
            previous = self.previous or (self._recorded() if self.resume_step is not None else None)
            if previous and self.resume_step is not None:
                tags.update({"trainer_core.continues": previous, "trainer_core.resumed_from_step": str(self.resume_step)})
            created = self.client.create_run(self._experiment_id(run.package), tags=tags, run_name=os.path.basename(self.run_dir))
            self.run_id = created.info.run_id
            config = _config_json(run.config)
            params = [Param(k[:250], v[:6000]) for k, v in _flatten(config).items()] if config else []
            for i in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[i : i + 100])
            if previous and self.resume_step is not None:
                self._continue_from(previous, self.resume_step)
            _write_json(os.path.join(self.run_dir, RECORD_FILE), {"run_id": self.run_id, "tracking_uri": self.tracking_uri})
            self._flush()
            return self.run_id

    def _recorded(self) -> str | None:
        try:
            with open(os.path.join(self.run_dir, RECORD_FILE), encoding="utf-8") as f:
                return json.load(f).get("run_id")
        except (OSError, ValueError):
            return None

    def _continue_from(self, previous: str, step: int) -> None:
        """Copy the previous run's history up to ``step`` into this run; mark the previous one."""
        from mlflow.entities import Metric
        from mlflow.exceptions import MlflowException

        try:
            old = self.client.get_run(previous)
        except MlflowException:
            return  # another tracking store: nothing to continue
        copied = []
        for key in old.data.metrics:
            for m in self.client.get_metric_history(previous, key):
                if m.step <= step:
                    copied.append(Metric(m.key, m.value, m.timestamp, m.step))
        for i in range(0, len(copied), 1000):
            self.client.log_batch(self.run_id, metrics=copied[i : i + 1000])
        self.client.set_tag(previous, "trainer_core.continued_by", self.run_id)
        if old.info.status == "RUNNING":
            self.client.set_terminated(previous, status="KILLED")

    # --- the sink -----------------------------------------------------------------------------
    def write(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        split = record.get("split", "train")
        stamp = int(record.get("time", time.time()) * 1000)
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key not in _RESERVED and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.pending.append(Metric(f"{split}/{key}", float(value), stamp, step))
        if self.run_id is not None and len(self.pending) >= 200:
            self._flush()

    def _flush(self) -> None:
        if self.run_id is None or not self.pending:
            return
        batch, self.pending = self.pending, []
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

    def truncate_after(self, step: int) -> None:
        self.resume_step = step  # the continuation run starts here (see the module docstring)
        self.pending = [m for m in self.pending if m.step <= step]

    def checkpoint(self, info: Any) -> None:
        if self.run_id is None:
            return
        name = os.path.basename(str(info.path).rstrip("/"))
        manifest = {k: v for k, v in info.to_json().items() if k not in ("problems",)}
        self.client.log_text(self.run_id, json.dumps(manifest, indent=2, default=str), f"checkpoints/{name}/manifest.json")
        self.client.set_tag(self.run_id, f"trainer_core.checkpoint.{name}", str(info.path))
        self.client.set_tag(self.run_id, "trainer_core.layout", str(info.layout))

    def close(self, status: str | None = None) -> None:
        self._flush()
        if self.run_id is not None and status is not None:
            self.client.set_terminated(self.run_id, status="FINISHED" if status in ("completed", "early_stopped") else
                                       "KILLED" if status == "interrupted" else "FAILED")  # fmt: skip
        with _LOCK:
            if _LIVE.get(self.run_dir) is self and status is not None:
                del _LIVE[self.run_dir]


def _config_json(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    from trainer_core.config import config_json

    try:
        return config_json(config)
    except Exception:  # noqa: BLE001 - params are a convenience; the config file is the record
        return None


def _write_json(path: str, data: dict[str, Any]) -> None:
    from trainer_core.checkpoint.atomic import atomic_write_json

    atomic_write_json(path, data)


def _sink_of(run: Any) -> MlflowSink | None:
    if run is None:
        return None
    with _LOCK:
        return _LIVE.get(str(run.run_dir))


@hookimpl
def register_metric_sinks(register):
    if mlflow_available():
        register("mlflow", make_sink)


@hookimpl
def on_resume(run, checkpoint):
    sink = _sink_of(run)
    if sink is not None:
        recorded = checkpoint.extra.get("mlflow_run_id") if isinstance(checkpoint.extra, dict) else None
        sink.previous = recorded if isinstance(recorded, str) else sink._recorded()


@hookimpl
def on_train_start(run):
    sink = _sink_of(run)
    if sink is not None:
        sink.open(run)


@hookimpl
def before_save(run, name, step, epoch, metrics):
    sink = _sink_of(run)
    if sink is not None and sink.run_id is not None:
        sink._flush()
        return {"mlflow_run_id": sink.run_id}
    return None


@hookimpl
def after_save(run, checkpoint):
    sink = _sink_of(run)
    if sink is not None:
        sink.checkpoint(checkpoint)


@hookimpl
def on_train_end(run, status):
    sink = _sink_of(run)
    if sink is not None:
        sink.close(status)
