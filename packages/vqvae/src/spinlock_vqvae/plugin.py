"""spinlock-vqvae's plugin for trainer-core: the checkpoint layouts it writes.

The VQ-VAE trainer that writes this layout is still to be built (issue #4); the dataset
generator and reader exist.
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
            description="best_model.pt + normalization_stats.npz + training_history.json in a VQ-VAE output directory",
        )
    )
