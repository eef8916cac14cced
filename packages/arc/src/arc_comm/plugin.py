"""arc-comm's plugin for trainer-core: the checkpoint layouts it writes.

The trainer itself arrives with issue #6; until then this registers the layouts so that
``core plugins`` and ``core list-checkpoints`` know the package.
"""

from __future__ import annotations

from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointLayout

PACKAGE = "arc-comm"


@hookimpl
def register_checkpoint_layouts(register):
    register(
        CheckpointLayout(
            name="arc.system",
            package=PACKAGE,
            kind="training",
            headline_metrics=("val_loss", "val_accuracy"),
            description="checkpoints/<name>.pth: full communication system (weights, optimizer, architecture, data config)",
        )
    )
    register(
        CheckpointLayout(
            name="arc.pretrained_encoder",
            package=PACKAGE,
            kind="encoder",
            headline_metrics=("val_accuracy",),
            description="pretrained_encoder_<task>.pth: a pretrained grid encoder",
        )
    )
