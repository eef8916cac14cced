"""Metric sinks: where every logged record goes.

A record is a flat dict: ``step``, ``epoch`` (or None), ``split`` (``train``, ``val``, ...),
``time`` and the metric values. A sink implements ``write(record)``, ``truncate_after(step)``
(a resumed run drops what came after its checkpoint) and ``close()``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from trainer_core.checkpoint.atomic import atomic_write_bytes


class MetricSink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...

    def truncate_after(self, step: int) -> None: ...

    def close(self) -> None: ...


MetricSinkFactory = Callable[..., MetricSink]
RESERVED = ("step", "epoch", "split", "time")


def read_jsonl(path: str | os.PathLike, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """Records of a JSONL metrics file; a torn last line (crash mid-write) is skipped."""
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if up_to_step is None or record.get("step", 0) <= up_to_step:
                    records.append(record)
    except FileNotFoundError:
        pass
    return records


class JsonlSink:
    """Appends one JSON line per record to ``<run_dir>/metrics.jsonl``."""

    def __init__(self, run_dir: str | os.PathLike, filename: str = "metrics.jsonl") -> None:
        self.path = Path(run_dir) / filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=float) + "\n")
        self._file.flush()

    def truncate_after(self, step: int) -> None:
        self._file.close()
        kept = read_jsonl(self.path, up_to_step=step)
        atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in kept).encode())
        self._file = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        self._file.close()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) and abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def format_line(record: dict[str, Any], unit: str = "epoch", total: int | None = None) -> str:
    """``Epoch 1000/150000 | Total: 1.2345 | Behavioral: 0.5000`` — the seeds' console style."""
    position = record.get(unit)
    head = f"{unit.capitalize()} {position}" + (f"/{total}" if total else "")
    if record.get("split", "train") != "train":
        head += f" [{record['split']}]"
    values = " | ".join(f"{k.replace('_', ' ').title().replace(' ', '')}: {_fmt(v)}" for k, v in record.items() if k not in RESERVED)
    return f"{head} | {values}" if values else head


class ConsoleSink:
    """Console lines like the seeds' plus a tqdm progress bar with the live loss.

    Lines are printed for every non-train record (validation, epoch summaries) and for train
    records every ``line_every`` steps. The bar shows only on a terminal unless ``progress=True``.
    """

    def __init__(
        self,
        run_dir: Any = None,
        *,
        total_steps: int | None = None,
        unit: str = "epoch",
        total: int | None = None,
        line_every: int = 0,
        progress: bool | None = None,
        stream: Any = None,
        initial_step: int = 0,
    ) -> None:
        from tqdm.auto import tqdm

        self.unit, self.total, self.line_every = unit, total, line_every
        self.stream = stream or sys.stderr
        disable = None if progress is None else not progress
        self.bar = tqdm(
            total=total_steps, initial=initial_step, disable=disable, file=self.stream, dynamic_ncols=True, leave=False, unit="step"
        )
        self._last_step = initial_step

    def write(self, record: dict[str, Any]) -> None:
        step = record.get("step", 0)
        if step > self._last_step:
            self.bar.update(step - self._last_step)
            self._last_step = step
        if record.get("split", "train") == "train":
            loss = next((v for k, v in record.items() if "loss" in k and k not in RESERVED), None)
            if loss is not None and not self.bar.disable:
                self.bar.set_postfix(loss=_fmt(loss), refresh=False)
            if not self.line_every or step % self.line_every:
                return
        self.bar.write(format_line(record, self.unit, self.total), file=self.stream)

    def truncate_after(self, step: int) -> None:
        self._last_step = step
        self.bar.n = step

    def close(self) -> None:
        self.bar.close()


class TensorBoardSink:
    """Scalars to ``<run_dir>/tensorboard`` as ``<split>/<name>``; needs the tensorboard package."""

    def __init__(self, run_dir: str | os.PathLike, subdir: str = "tensorboard") -> None:
        self.log_dir = str(Path(run_dir) / subdir)
        self._writer = None
        self._purge_step: int | None = None

    def _get(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                from tensorboardX import SummaryWriter  # type: ignore[no-redef]
            self._writer = SummaryWriter(self.log_dir, purge_step=self._purge_step)
        return self._writer

    def write(self, record: dict[str, Any]) -> None:
        writer = self._get()
        for key, value in record.items():
            if key not in RESERVED and isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(f"{record.get('split', 'train')}/{key}", value, record.get("step", 0))

    def truncate_after(self, step: int) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._purge_step = step + 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None or importlib.util.find_spec("tensorboardX") is not None
