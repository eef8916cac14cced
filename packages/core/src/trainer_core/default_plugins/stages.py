"""Stage status files (``<dir>/<stage>.json`` written by :class:`~trainer_core.stages.StageCache`)
appear in ``core list-checkpoints`` as kind ``stage``."""

from __future__ import annotations

import json
import os

from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointInfo, CheckpointLayout
from trainer_core.stages import MARKER, STATUS_FORMAT


class StageLayout(CheckpointLayout):
    name = "core.stage"
    package = "trainer-core"
    kind = "stage"
    description = "status file of one pipeline stage (stage cache)"

    def recognise(self, path: str, is_dir: bool) -> bool:
        # cheap tests first: a JSON file beside a stage cache's marker (or, written before the marker
        # existed, in a folder named checkpoints/), then the format string in its head
        if is_dir or not path.endswith(".json"):
            return False
        folder = os.path.dirname(path)
        if not os.path.exists(os.path.join(folder, MARKER)) and os.path.basename(folder) != "checkpoints":
            return False
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError:
            return False
        return STATUS_FORMAT.encode() in head

    def describe(self, path: str) -> CheckpointInfo:
        info = CheckpointInfo(path=path, layout=self.name, kind=self.kind, package="?")
        try:
            with open(path, "rb") as f:
                record = json.load(f)
        except (OSError, ValueError) as exc:
            info.status, info.problems = "corrupt", [f"unreadable stage file: {exc}"]
            return info
        stat = os.stat(path)
        info.modified, info.size = stat.st_mtime, stat.st_size
        info.package = record.get("package") or "?"
        info.kind = f"stage:{record.get('stage', '?')}"
        info.metrics = record.get("metrics") or {}
        info.config_hash = record.get("config_hash")
        info.created = record.get("timestamp")
        info.extra = {"outputs": record.get("outputs", [])}
        if record.get("status") != "completed":
            info.status = "incomplete"
            info.problems.append(f"stage status is {record.get('status')!r}")
        return info


@hookimpl
def register_checkpoint_layouts(register):
    register(StageLayout())
