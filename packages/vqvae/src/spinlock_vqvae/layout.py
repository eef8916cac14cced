"""The checkpoint layout of `spinlock train-vqvae`: registered by the plugin, used by the run."""

from __future__ import annotations

from trainer_core import CheckpointLayout

BEST, LAST = "best_model.pt", "last_model.pt"

LAYOUT = CheckpointLayout(
    name="vqvae.training",
    package="spinlock-vqvae",
    kind="training",
    version=2,  # v2: core's torch training state (trainer_state) beside the seed's keys
    headline_metrics=("val_loss", "composite_metric"),
    checkpoint_dir="",  # best_model.pt / last_model.pt sit in the output directory, as in the seed
    name_format=LAST,
    single_file=True,
    model="vqvae.categorical-hierarchical",
    description="best_model.pt / last_model.pt of a train-vqvae output directory",
)
