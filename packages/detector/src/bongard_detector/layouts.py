"""bongard-detector's checkpoint layouts: registered by the plugin, used by the training runs."""

from __future__ import annotations

from trainer_core import CheckpointLayout

PACKAGE = "bongard-detector"

DETECTOR_LAYOUT = CheckpointLayout(
    name="detector.model",
    package=PACKAGE,
    kind="training",
    version=2,  # v2: written through core's run API (config hash, model, core's torch state)
    headline_metrics=("loss",),
    checkpoint_dir="epochs",
    name_format="epoch_{epoch:03d}",
    model="detector.fcos",
    description="FCOS detector: epochs/epoch_NNN (weights, optimizer, schedule, RNGs) and final (SWA model, config, classifier)",
)

CLASSIFIER_LAYOUT = CheckpointLayout(
    name="detector.classifier",
    package=PACKAGE,
    kind="classifier",
    version=2,
    headline_metrics=("loss",),
    checkpoint_dir="",  # models/<profile>/classifier/step_NNNNN
    name_format="step_{step:05d}",
    model="detector.shape-classifier",
    description="shape classifier of box crops (classifier/step_NNNNN): the detector's backbone start and its rescoring",
)
