"""The classifier's checkpoint layout: registered by the plugin, used by the run."""

from __future__ import annotations

from trainer_core import CheckpointLayout

LAYOUT = CheckpointLayout(
    name="vizwatch.classifier",
    package="vizwatch",
    kind="training",
    version=1,
    headline_metrics=("val_acc", "val_balanced_acc"),
    checkpoint_dir="checkpoints",
    name_format="checkpoint_epoch_{epoch:04d}",
    model="vizwatch.classifier",
    description="vizwatch train: imbalanced classifier (model.safetensors + trainer_state.pt + config.json)",
)
