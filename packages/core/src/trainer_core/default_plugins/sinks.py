"""Core's own metric sinks, registered through the same hook a third party would use."""

from __future__ import annotations

from trainer_core.hookspecs import hookimpl
from trainer_core.sinks import ConsoleSink, JsonlSink, TensorBoardSink, tensorboard_available


@hookimpl
def register_metric_sinks(register):
    register("jsonl", JsonlSink)
    register("console", ConsoleSink)
    if tensorboard_available():
        register("tensorboard", TensorBoardSink)
