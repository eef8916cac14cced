"""spinlock-vqvae's plugin for trainer-core: the checkpoint layouts it writes.

The trainer itself arrives with issue #4; until then this registers the layouts so that
``core plugins`` and ``core list-checkpoints`` know the package.
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
