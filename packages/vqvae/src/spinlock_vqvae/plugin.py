"""spinlock-vqvae's plugin for trainer-core: the checkpoint layouts it writes.

`spinlock train-vqvae` writes this layout: best_model.pt and last_model.pt, each a single-file
checkpoint with a sidecar manifest.
"""

from __future__ import annotations

from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointLayout

PACKAGE = "spinlock-vqvae"


@hookimpl
def register_checkpoint_layouts(register):
    register(
        CheckpointLayout(
            name="vqvae.training",
            package=PACKAGE,
            kind="training",
            headline_metrics=("val_loss", "composite_metric"),
            description="best_model.pt / last_model.pt of a train-vqvae output directory",
        )
    )
