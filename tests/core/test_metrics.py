"""Metrics: every record reaches every sink; history survives resume without duplicates."""

from __future__ import annotations

import io
import json

import pytest

from trainer_core.metrics import MetricsLogger
from trainer_core.sinks import ConsoleSink, TensorBoardSink, format_line, read_jsonl, tensorboard_available


class Collect:
    def __init__(self):
        self.records, self.truncated = [], []

    def write(self, record):
        self.records.append(record)

    def truncate_after(self, step):
        self.truncated.append(step)

    def close(self):
        pass


def test_records_reach_sinks_and_history(tmp_path):
    sink = Collect()
    logger = MetricsLogger(tmp_path, [sink])
    for step in range(1, 4):
        logger.log({"loss": 1.0 / step}, step=step, epoch=1)
    logger.log({"val_loss": 0.2}, step=3, epoch=1, split="val")
    logger.close()
    assert [r["step"] for r in sink.records] == [1, 2, 3, 3]
    assert logger.series("loss") == [1.0, 0.5, pytest.approx(1 / 3)]
    assert json.loads((tmp_path / "history.json").read_text()) == read_jsonl(tmp_path / "metrics.jsonl")


def test_resume_drops_records_after_the_checkpoint(tmp_path):
    logger = MetricsLogger(tmp_path)
    for step in range(1, 11):
        logger.log({"loss": float(step)}, step=step)
    logger.jsonl._file.write('{"step": 11, "lo')  # a torn line from a crash mid-write
    logger.jsonl._file.flush()
    sink = Collect()
    resumed = MetricsLogger(tmp_path, [sink])
    resumed.resume(6)
    for step in range(7, 9):
        resumed.log({"loss": float(step)}, step=step)
    resumed.close()
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == list(range(1, 9))
    assert sink.truncated == [6]


def test_console_lines_look_like_the_seeds():
    line = format_line(
        {"step": 1000, "epoch": 1000, "split": "train", "time": 0, "total": 1.23456, "behavioral": 0.5}, unit="epoch", total=150000
    )
    assert line == "Epoch 1000/150000 | Total: 1.2346 | Behavioral: 0.5000"
    out = io.StringIO()
    sink = ConsoleSink(total_steps=10, line_every=5, progress=False, stream=out)
    for step in range(1, 11):
        sink.write({"step": step, "epoch": 1, "split": "train", "time": 0, "loss": 0.1})
    sink.write({"step": 10, "epoch": 1, "split": "val", "time": 0, "val_loss": 0.2})
    sink.close()
    assert out.getvalue().count("\n") == 3 and "[val]" in out.getvalue()


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard is not installed (pip install tensorboard)")
def test_tensorboard_sink_writes_scalars(tmp_path):
    pytest.importorskip("torch")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = TensorBoardSink(tmp_path)
    for step in range(1, 4):
        sink.write({"step": step, "epoch": 1, "split": "train", "time": 0, "loss": float(step)})
    sink.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("train/loss")] == [1.0, 2.0, 3.0]
