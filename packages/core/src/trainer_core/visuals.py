"""What the visualization hooks hand to plotters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SplitData:
    """One split's points: ``embeddings`` (N x D), true ``labels`` and ``predictions`` (N)."""

    embeddings: Any
    labels: Any = None
    predictions: Any = None


@dataclass
class VisualizationEvent:
    """Payload of ``visualize_epoch_end`` / ``visualize_checkpoint``.

    Arrays are host (numpy) copies the plotter may keep; ``class_names`` index the labels.
    """

    run_dir: Path
    epoch: int
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    splits: dict[str, SplitData] = field(default_factory=dict)
    class_names: list[str] | None = None
    total_epochs: int | None = None
    package: str | None = None
