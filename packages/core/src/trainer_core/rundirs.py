"""Run directories that never overwrite: ``run_NNN`` and timestamped names.

Allocation relies on ``os.mkdir`` failing when the name exists, so two processes starting at the
same instant get different directories. Under torchrun the ranks of one run agree on one directory:
rank 0 creates it and tells the others through torch.distributed's store.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from trainer_core.storage import absolute, is_url

_ASKED: Counter = Counter()  # allocations per (root, prefix): the same count on every rank that asks


def _one_for_all_ranks(root: Any, prefix: str, make: Callable[[], Any]) -> Any:
    """``make()`` on rank 0; the other ranks of a torchrun job receive its result."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return make()
    from trainer_core.distributed import current_world

    world = current_world()
    where = absolute(root)
    _ASKED[(where, prefix)] += 1
    key = f"trainer_core/run_dir/{where}/{prefix}/{_ASKED[(where, prefix)]}"
    if world.main:
        path = make()
        world.publish(key, str(path))
        return path
    made = world.receive(key, f"rank 0's new run directory in {root}")
    return made if is_url(made) else Path(made)


def allocate_run_dir(root: str | os.PathLike, prefix: str = "run_", width: int = 3) -> Path:
    """Create and return ``root/<prefix>NNN`` with the next free number (never reusing one)."""
    if is_url(root):
        return _one_for_all_ranks(root, prefix, lambda: _next_numbered_remote(str(root), prefix, width))
    root = Path(root)
    return _one_for_all_ranks(root, prefix, lambda: _next_numbered(root, prefix, width))


def _next_numbered_remote(root: str, prefix: str, width: int) -> str:
    """On object storage: the number is claimed by a conditional create of ``<run>/.claimed``."""
    from trainer_core.checkpoint.remote import CommitConflictError, put_conditional
    from trainer_core.storage import filesystem, join

    fs, inner = filesystem(root)
    fs.invalidate_cache(inner)
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    try:
        names = [p.rstrip("/").rpartition("/")[2] for p in fs.ls(inner, detail=False)]
    except FileNotFoundError:
        names = []
    number = max((int(m.group(1)) for name in names if (m := pattern.match(name))), default=0) + 1
    while True:
        candidate = f"{prefix}{number:0{width}d}"
        try:
            put_conditional(fs, f"{inner}/{candidate}/.claimed", b"", None)
            return join(root, candidate)
        except CommitConflictError:
            number += 1


def _next_numbered(root: Path, prefix: str, width: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    taken = [int(m.group(1)) for name in os.listdir(root) if (m := pattern.match(name))]
    number = max(taken, default=0) + 1
    while True:
        candidate = root / f"{prefix}{number:0{width}d}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1


def timestamped_run_dir(root: str | os.PathLike, prefix: str = "run_", now: datetime | None = None) -> Path:
    """Create ``root/<prefix><YYYYmmdd_HHMMSS>``, adding ``_2``, ``_3``... if taken."""
    root = Path(root)
    return _one_for_all_ranks(root, prefix, lambda: _next_stamped(root, prefix, now))


def _next_stamped(root: Path, prefix: str, now: datetime | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime("%Y%m%d_%H%M%S")
    suffix = 1
    while True:
        candidate = root / (f"{prefix}{stamp}" + (f"_{suffix}" if suffix > 1 else ""))
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            suffix += 1
