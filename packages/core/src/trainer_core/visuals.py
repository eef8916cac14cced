"""What the visualization hooks hand to plotters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SplitData:
    """One split's points: ``embeddings`` (N x D), true ``labels`` and ``predictions`` (N).

    Give the same points in the same order at every epoch, so plotters can follow them.
    """

    embeddings: Any
    labels: Any = None
    predictions: Any = None


@dataclass
class CodebookData:
    """One codebook of a vector-quantised model: ``vectors`` (K x D), each code's ``usage`` (K,
    e.g. its share of assignments) and which codes are ``dead`` (K booleans, by the trainer's own
    rule). ``group`` names what the codebook quantises (a category, a head), ``level`` its depth
    in a residual stack (1 = coarse)."""

    group: str
    level: int
    vectors: Any
    usage: Any = None
    dead: Any = None


@dataclass
class VisualizationEvent:
    """Payload of ``visualize_epoch_end`` / ``visualize_checkpoint``.

    ``splits`` maps a split name (``train``, ``val``) to :class:`SplitData` of host (numpy)
    arrays. A trainer may instead give ``splits_factory``, called at most once and only by a
    plotter that draws this epoch (:meth:`get_splits`), so epochs nobody plots cost nothing.
    ``options`` are the user's visualization choices (``enabled``, ``method``, ``every``,
    ``root``...), e.g. from ``--visualize-training --viz-method tsne --viz-every 10``.
    ``codebooks`` (vector-quantised models) are the learned codebooks with their usage, for a
    plotter that draws codebooks.
    """

    run_dir: Path
    epoch: int
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    splits: dict[str, SplitData] | None = None
    class_names: list[str] | None = None
    total_epochs: int | None = None
    package: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    splits_factory: Callable[[], dict[str, SplitData]] | None = None
    codebooks: list[CodebookData] | None = None

    def get_splits(self) -> dict[str, SplitData]:
        if self.splits is None:
            self.splits = self.splits_factory() if self.splits_factory is not None else {}
        return self.splits
