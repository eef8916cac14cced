"""vizwatch's plugin for trainer-core: the checkpoint layouts it writes.

The trainer itself arrives with issue #3; until then this registers the layouts so that
``core plugins`` and ``core list-checkpoints`` know the package.
"""

from __future__ import annotations

from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointLayout

PACKAGE = "vizwatch"


@hookimpl
def register_checkpoint_layouts(register):
    register(
        CheckpointLayout(
            name="vizwatch.run",
            package=PACKAGE,
            kind="visualization",
            headline_metrics=("best_val_acc", "frames"),
            description="training_feature_visualizations/run_NNN/: frames, run_metadata.json, training_progress.txt",
        )
    )
