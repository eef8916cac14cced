"""The run a hook is told about."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Run:
    """A training run: where it writes, which package runs it, its resolved config and hash."""

    run_dir: Path
    package: str
    config: Any = None
    config_hash: str | None = None
    resumed_from: str | None = None
    run_id: str | None = None  # recorded in every manifest; a resume keeps it
