"""The ``core list-checkpoints`` table: grouped by run, fitted to the terminal.

Rows are grouped by the folder that holds them (a run's checkpoints), each group under a header
line with that folder and its package, a blank line between groups; inside a group a row shows
the checkpoint's own name. Nested metrics (a pipeline stage's ``{"real": {"AP50": ...}}``) show
as a few dotted numbers. Without ``wide`` the table fits ``width`` columns: the metrics column
takes what the others leave and ends with an ellipsis when cut; on a very narrow terminal the
MODIFIED and KIND columns go first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from trainer_core import storage
from trainer_core.cli.support import format_value, human_size, human_time
from trainer_core.layouts import CheckpointInfo

ELLIPSIS = "…"
NESTED_LEAVES = 3  # numbers shown per nested metric


def display_path(path: str) -> str:
    if storage.is_url(path):
        return path
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def position(c: CheckpointInfo) -> str:
    if c.epoch is None and c.step is None:
        return "-"
    return f"{'-' if c.epoch is None else c.epoch}/{'-' if c.step is None else c.step}"


def _leaves(name: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key, inner in value.items():
            out += _leaves(f"{name}.{key}", inner)
        numbers = [(k, v) for k, v in out if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return numbers[:NESTED_LEAVES]
    return [(name, value)]


def headline_text(c: CheckpointInfo) -> str:
    pairs: list[tuple[str, Any]] = []
    for key, value in c.headline_metrics().items():
        pairs += _leaves(key, value)
    return " ".join(f"{k}={format_value(v)}" for k, v in pairs) or "-"


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


COLUMNS = ("NAME", "KIND", "EPOCH/STEP", "METRICS", "SIZE", "MODIFIED", "STATUS")


def _cells(c: CheckpointInfo) -> dict[str, str]:
    return {"NAME": storage.basename(c.path) if storage.is_url(c.path) else os.path.basename(c.path.rstrip(os.sep)), "KIND": c.kind, "EPOCH/STEP": position(c), "METRICS": headline_text(c),
            "SIZE": human_size(c.size), "MODIFIED": human_time(c.modified), "STATUS": c.status}  # fmt: skip


def render_listing(found: Iterable[CheckpointInfo], sort_key: Callable[[CheckpointInfo], Any], reverse: bool, width: int | None) -> str:
    """The grouped table; ``width`` None prints every cell whole (``--wide``)."""
    groups: dict[str, list[CheckpointInfo]] = {}
    for c in found:
        groups.setdefault(storage.parent(c.path) if storage.is_url(c.path) else os.path.dirname(c.path.rstrip(os.sep)), []).append(c)
    cells = {folder: [_cells(c) for c in sorted(members, key=sort_key, reverse=reverse)] for folder, members in sorted(groups.items())}
    every = [row for rows in cells.values() for row in rows]
    names, room = _fit(every, width) if width is not None else (list(COLUMNS), None)
    widths = {n: max([len(n)] + [len(cut(r[n], room) if n == "METRICS" and room else r[n]) for r in every]) for n in names}

    def line(row: dict[str, str]) -> str:
        return ("  " + "  ".join((cut(row[n], room) if n == "METRICS" and room else row[n]).ljust(widths[n]) for n in names)).rstrip()

    out = [line({n: n for n in names})]
    for folder, rows in cells.items():
        packages = sorted({c.package for c in groups[folder] if c.package})
        out += ["", _header(display_path(folder), f"  [{', '.join(packages)}]" if packages else "", width)]
        out += [line(r) for r in rows]
    return "\n".join(out)


def _header(folder: str, packages: str, width: int | None) -> str:
    """The run's folder and packages; a folder too long for the width loses its beginning."""
    room = None if width is None else width - len(packages)
    if room is not None and len(folder) > room:
        folder = ELLIPSIS + folder[len(folder) - max(room - 1, 8) :]
    return folder + packages


def _fit(rows: list[dict[str, str]], width: int) -> tuple[list[str], int]:
    """The columns to show and the room left for METRICS: MODIFIED, then KIND, are dropped while the
    other columns leave the metrics under 20 characters."""
    names = list(COLUMNS)
    room = 0
    for drop in (None, "MODIFIED", "KIND"):
        if drop is not None:
            names.remove(drop)
        fixed = sum(max([len(n)] + [len(r[n]) for r in rows]) for n in names if n != "METRICS")
        room = width - 2 - fixed - 2 * (len(names) - 1)
        if room >= 20:
            break
    return names, max(room, 8)
