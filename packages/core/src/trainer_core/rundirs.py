"""Run directories that never overwrite: ``run_NNN`` and timestamped names.

Allocation relies on ``os.mkdir`` failing when the name exists, so two processes starting at the
same instant get different directories.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path


def allocate_run_dir(root: str | os.PathLike, prefix: str = "run_", width: int = 3) -> Path:
    """Create and return ``root/<prefix>NNN`` with the next free number (never reusing one)."""
    root = Path(root)
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
