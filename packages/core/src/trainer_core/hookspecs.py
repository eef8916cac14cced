"""The contract between trainer-core and its plugins.

A plugin is any module or object with functions marked ``@hookimpl`` whose names match the
hooks below. Installed packages expose plugins through the entry-point group ``trainer_core``.

Registration hooks hand the plugin a ``register`` callable instead of collecting return
values; lifecycle hooks are named ``before_*``, ``after_*`` and ``on_*``. Every argument is
optional for an implementation: pluggy passes only the names it asks for.

Heavy libraries (torch, jax, matplotlib) must be imported inside hook bodies, never at module
import time, so that ``core list-checkpoints`` starts fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from trainer_core.config import ConfigSchema
    from trainer_core.layouts import CheckpointInfo, CheckpointLayout
    from trainer_core.models import ModelSpec
    from trainer_core.run import Run
    from trainer_core.sinks import MetricSinkFactory
    from trainer_core.visuals import VisualizationEvent

PROJECT = "trainer_core"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration -------------------------------------------------------------------------


@hookspec
def register_checkpoint_layouts(register: Callable[[CheckpointLayout], None]) -> None:
    """Register every checkpoint layout the plugin writes by calling ``register(layout)``.

    A layout names its package, kind and version, recognises its paths and describes one of them
    (epoch/step, metrics, config hash, size, created, status) from metadata alone: it must never
    open a weight file nor import torch or jax.
    """


@hookspec
def register_config_schemas(register: Callable[[ConfigSchema], None]) -> None:
    """Register the plugin's config schemas by calling ``register(schema)``.

    A :class:`~trainer_core.config.ConfigSchema` pairs a name with a typed pydantic model (whose
    field defaults are the defaults) and the file formats it reads (``json``, ``yaml``).
    """


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register the plugin's models by calling ``register(spec)``.

    A :class:`~trainer_core.models.ModelSpec` names the model, its framework, the layouts whose
    checkpoints it loads and ``load(path)``, which returns the model with its weights; it is what
    :func:`trainer_core.load_model` calls for a checkpoint of one of those layouts.
    """


@hookspec
def register_metric_sinks(register: Callable[[str, MetricSinkFactory], None]) -> None:
    """Register metric sinks by calling ``register(name, factory)``.

    ``factory(run_dir=..., **options)`` returns a :class:`~trainer_core.sinks.MetricSink` that
    receives every logged record. Core registers ``jsonl``, ``console`` and (when the
    ``tensorboard`` package is installed) ``tensorboard`` through this same hook.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``core`` command group, e.g. ``@cli.command()``."""


# --- lifecycle ----------------------------------------------------------------------------


@hookspec
def on_train_start(run: Run) -> None:
    """Called once when a training run starts (fresh or resumed), after its directory exists."""


@hookspec
def on_resume(run: Run, checkpoint: CheckpointInfo) -> None:
    """Called after a run's state was restored from ``checkpoint``, before training continues."""


@hookspec
def before_save(run: Run | None, name: str, step: int, epoch: int | None, metrics: dict[str, float]) -> dict[str, Any] | None:
    """Called on the training thread before a checkpoint is snapshotted.

    A returned dict is merged into the manifest's ``extra`` field (JSON values only).
    """


@hookspec
def after_save(run: Run | None, checkpoint: CheckpointInfo) -> None:
    """Called once a checkpoint is committed (renamed into place, manifest durable).

    With asynchronous saving this runs on the writer thread: keep it short and thread-safe.
    """


@hookspec
def on_train_end(run: Run, status: str) -> None:
    """Called when a run stops; ``status`` is ``completed``, ``interrupted`` or ``failed``."""


@hookspec
def on_train_error(run: Run, error: BaseException) -> None:
    """Called when training raises, before ``on_train_end(status="failed")``."""


# --- visualization ------------------------------------------------------------------------


@hookspec
def visualize_epoch_end(event: VisualizationEvent) -> None:
    """Called at the end of each epoch with what a plotter needs.

    ``event`` carries the run directory, epoch, step, metrics and per split the embeddings,
    labels and predictions the trainer chose to expose. Plot off the training path: the trainer
    waits for this call to return.
    """


@hookspec
def visualize_checkpoint(event: VisualizationEvent, checkpoint: CheckpointInfo) -> None:
    """Called after a committed checkpoint with the same payload as ``visualize_epoch_end``.

    Fired at commit (``TrainingRun.save(..., visualization=event)``), or later for a checkpoint
    already on disk (``TrainingRun.visualize_checkpoint``: the last one of a run, or a command
    that draws a saved model). ``event.codebooks`` carries a vector-quantised model's codebooks.
    """
