"""The metrics logger: every record to every sink, history kept, resume without duplicates."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainer_core.checkpoint.atomic import atomic_write_json
from trainer_core.sinks import JsonlSink, MetricSink, read_jsonl


def build_sinks(
    factories: Mapping[str, Any],
    run_dir: str | os.PathLike,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    disabled: Iterable[str] = (),
) -> list[MetricSink]:
    """One sink per registered factory (``jsonl`` excepted: the logger always keeps it).

    ``options[name]`` are keyword arguments for that factory; every factory gets ``run_dir``.
    """
    options = options or {}
    skip = {"jsonl", *disabled}
    return [factory(run_dir, **options.get(name, {})) for name, factory in factories.items() if name not in skip]


class MetricsLogger:
    """Logs metrics by step (and epoch) to ``<run_dir>/metrics.jsonl`` and extra sinks.

    ``history`` holds every record of the run; :meth:`resume` drops records logged after the
    checkpoint a run resumes from, both in memory and in every sink, so nothing is duplicated.
    """

    def __init__(self, run_dir: str | os.PathLike, sinks: Iterable[MetricSink] = (), *, history_name: str = "history.json") -> None:
        self.run_dir = Path(run_dir)
        self.jsonl = JsonlSink(self.run_dir)
        self.sinks: list[MetricSink] = [self.jsonl, *sinks]
        self.history_name = history_name
        self.history: list[dict[str, Any]] = read_jsonl(self.jsonl.path)

    def log(self, values: Mapping[str, Any], *, step: int, epoch: int | None = None, split: str = "train") -> dict[str, Any]:
        record: dict[str, Any] = {"step": int(step), "epoch": epoch, "split": split, "time": round(time.time(), 3)}
        for key, value in values.items():
            record[key] = value.item() if hasattr(value, "item") else value
        self.history.append(record)
        for sink in self.sinks:
            sink.write(record)
        return record

    def resume(self, step: int) -> None:
        """Continue after the checkpoint at ``step``: forget everything logged later."""
        self.history = [r for r in self.history if r.get("step", 0) <= step]
        for sink in self.sinks:
            sink.truncate_after(step)

    def series(self, key: str, split: str = "train") -> list[Any]:
        return [r[key] for r in self.history if r.get("split") == split and key in r]

    def write_history(self) -> Path:
        """Write the whole history as JSON (``history.json``), atomically."""
        path = self.run_dir / self.history_name
        atomic_write_json(path, self.history)
        return path

    def close(self) -> None:
        self.write_history()
        for sink in self.sinks:
            sink.close()
