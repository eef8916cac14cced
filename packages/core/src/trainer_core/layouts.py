"""Checkpoint layouts: how a package's checkpoints are recognised and described from metadata.

Checkpoints written by core's engine carry a manifest naming their layout, so the generic
description below fits them all; a layout only adds what to show (``headline_metrics``). A
layout may also claim paths without a manifest (a legacy format) through ``recognise`` and
``describe`` — both must read metadata only, never weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "incomplete", "corrupt", "no-plugin", "plugin-older")


@dataclass
class CheckpointInfo:
    """Everything known about one checkpoint without loading its weights."""

    path: str
    package: str = "?"
    layout: str = "?"
    layout_version: int | None = None
    kind: str = "?"
    epoch: int | None = None
    step: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    headline: tuple[str, ...] = ()
    config_hash: str | None = None
    size: int = 0
    created: str | None = None
    modified: float | None = None
    status: str = "ok"
    problems: list[str] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    manifest_path: str | None = None
    revision: str | None = None  # object storage: the manifest's ETag, for conditional replace/delete
    data_prefix: str | None = None  # object storage: the save's data prefix inside the checkpoint

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _FIELDS}  # shallow: values are JSON already
        data["headline"] = list(self.headline)
        return data

    def headline_metrics(self) -> dict[str, Any]:
        names = self.headline or tuple(self.metrics)[:3]
        return {k: self.metrics[k] for k in names if k in self.metrics}


_FIELDS = tuple(f.name for f in dataclasses.fields(CheckpointInfo))


class CheckpointLayout:
    """One kind of checkpoint a package writes: the single source of truth for its names.

    Subclass or instantiate with keywords. ``name``, ``package``, ``kind`` and ``version`` go
    into every manifest written through core's run API; ``checkpoint_dir`` (inside the run
    directory; ``""`` for the run directory itself), ``name_format`` and ``single_file`` say where
    and how; ``model`` names the registered model (``register_models``) that loads it.
    """

    name: str = ""
    package: str = ""
    kind: str = "checkpoint"
    version: int = 1
    headline_metrics: tuple[str, ...] = ()
    description: str = ""
    checkpoint_dir: str = "checkpoints"
    name_format: str = "checkpoint_step_{step:08d}"
    single_file: bool = False
    model: str | None = None

    def __init__(self, **attrs: Any) -> None:
        for key, value in attrs.items():
            if not hasattr(type(self), key):
                raise TypeError(f"CheckpointLayout has no attribute {key!r}")
            setattr(self, key, value)
        if not self.name or not self.package:
            raise TypeError("a CheckpointLayout needs a name and a package")

    def recognise(self, path: str, is_dir: bool) -> bool:
        """True if ``path`` (without an engine manifest) is a checkpoint of this layout."""
        return False

    def describe(self, path: str) -> CheckpointInfo:
        """Describe a path this layout recognised, from metadata alone."""
        raise NotImplementedError

    def refine(self, info: CheckpointInfo) -> CheckpointInfo:
        """Adjust the generic description of an engine-written checkpoint of this layout."""
        if self.headline_metrics and not info.headline:
            info.headline = tuple(self.headline_metrics)
        return info

    def manager_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~trainer_core.checkpoint.CheckpointManager` for this layout."""
        return dict(
            package=self.package,
            layout=self.name,
            layout_version=self.version,
            kind=self.kind,
            name_format=self.name_format,
            single_file=self.single_file,
        )

    def __repr__(self) -> str:
        return f"<CheckpointLayout {self.name} ({self.package}, {self.kind} v{self.version})>"
