"""choice2vec's plugin for trainer-core: the checkpoint layouts it writes.

The trainer itself arrives with issue #5; until then this registers the layouts so that
``core plugins`` and ``core list-checkpoints`` know the package.
"""

from __future__ import annotations

from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointLayout

PACKAGE = "choice2vec"


@hookimpl
def register_checkpoint_layouts(register):
    register(
        CheckpointLayout(
            name="choice2vec.checkpoint",
            package=PACKAGE,
            kind="training",
            headline_metrics=("best_accuracy", "total_loss"),
            description="checkpoint_epoch_XXXXXX/: flax msgpack weights, clustering results, 4-row figure",
        )
    )
