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

ANO_MODEL_FILE = "ano_model.pt"

ANO_LAYOUT = CheckpointLayout(
    name="vqvae.ano",
    package="spinlock-vqvae",
    kind="training",
    version=1,
    headline_metrics=("r2_mean", "val_loss"),
    checkpoint_dir="",
    name_format=ANO_MODEL_FILE,
    single_file=True,
    model="vqvae.ano-mlp",
    description="ano_model.pt of a train-ano output directory (tokens or raw features to operator parameters)",
)
