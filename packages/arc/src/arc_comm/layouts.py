"""arc-comm's checkpoint layouts: registered by the plugin, used by the training session."""

from __future__ import annotations

from trainer_core import CheckpointLayout

PACKAGE = "arc-comm"

SYSTEM_LAYOUT = CheckpointLayout(
    name="arc.system",
    package=PACKAGE,
    kind="training",
    version=2,  # v2: core's torch training state (trainer_state: RNGs, generator, position)
    headline_metrics=("val_loss", "val_acc"),
    name_format="{name}.pth",
    single_file=True,
    model="arc.communication-system",
    description="checkpoints/<name>.pth: full communication system (weights, optimizer, architecture, data config)",
)

ENCODER_LAYOUT = CheckpointLayout(
    name="arc.pretrained_encoder",
    package=PACKAGE,
    kind="encoder",
    version=1,
    headline_metrics=("val_acc",),
    name_format="{name}",
    single_file=True,
    model="arc.grid-encoder",
    description="pretrained_encoder_<task>.pth: a pretrained grid encoder",
)
