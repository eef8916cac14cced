"""The example trainer's checkpoint layout: the one object its plugin registers and its run uses."""

from __future__ import annotations

from trainer_core.layouts import CheckpointLayout

LAYOUT = CheckpointLayout(
    name="core.example",
    package="trainer-core",
    kind="training",
    version=1,
    headline_metrics=("val_loss", "val_acc"),
    checkpoint_dir="checkpoints",
    name_format="checkpoint_step_{step:06d}",
    model="core.spiral-mlp",
    description="full training state of the example trainer (model.safetensors + trainer_state.pt + config.json)",
)
