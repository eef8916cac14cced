"""bongard-detector's plugin for trainer-core: the checkpoint layouts it writes, so that
``core plugins``, ``core list-checkpoints`` and ``core show`` know them."""

from __future__ import annotations

from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointLayout

PACKAGE = "bongard-detector"


@hookimpl
def register_checkpoint_layouts(register):
    register(
        CheckpointLayout(
            name="detector.model",
            package=PACKAGE,
            kind="training",
            headline_metrics=("loss",),
            description="FCOS detector: epochs/epoch_NNN (weights, optimizer, schedule, RNGs) and final (SWA model, config, classifier)",
        )
    )
    register(
        CheckpointLayout(
            name="detector.classifier",
            package=PACKAGE,
            kind="classifier",
            headline_metrics=("loss",),
            description="shape classifier of box crops (classifier/step_NNNNN): the detector's backbone start and its rescoring",
        )
    )
