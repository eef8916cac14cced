"""bongard-detector's plugin for trainer-core: the checkpoint layouts it writes.

The trainer itself arrives with issue #7; until then this registers the layouts so that
``core plugins`` and ``core list-checkpoints`` know the package.
"""

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
            headline_metrics=("mAP", "mAP_50"),
            description="detector weights with its training state",
        )
    )
