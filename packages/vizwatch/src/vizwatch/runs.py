"""Run folders: ``training_feature_visualizations/run_NNN/`` with frames, metadata, progress, script.

Folders come from core's ``allocate_run_dir`` (``mkdir`` is atomic): never reused or overwritten,
even when two runs start at once; nothing here deletes anything.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from trainer_core import allocate_run_dir, atomic_write_bytes, atomic_write_json

DEFAULT_ROOT = "training_feature_visualizations"
METADATA = "run_metadata.json"
PROGRESS = "training_progress.txt"
SCRIPT = "create_animation.sh"
FRAME = re.compile(r"^epoch_(\d{3,})_acc(\d+\.\d+)\.png$")

ANIMATION_SCRIPT = """#!/usr/bin/env bash
# Make training_animation.gif from this run's frames (Python only, no ImageMagick needed).
# Options: --format mp4, --fps N, --output FILE (see `vizwatch animate --help`).
# The interpreter that wrote this run, by absolute path (no venv on PATH needed); else PATH's vizwatch.
cd "$(dirname "$0")" || exit 1
PYTHON={python}
if [ -x "$PYTHON" ] && "$PYTHON" -c "import vizwatch" 2>/dev/null; then
    exec "$PYTHON" -m vizwatch animate . "$@"
fi
exec vizwatch animate . "$@"
"""


def animation_script() -> str:
    return ANIMATION_SCRIPT.format(python=shlex.quote(sys.executable))


def frame_name(epoch: int, val_acc: float | None) -> str:
    return f"epoch_{epoch:03d}_acc{(val_acc if val_acc is not None else 0.0):.4f}.png"


def create_run(root: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    run = allocate_run_dir(root, "run_", 3)
    metadata = {"run_directory": str(run), **metadata, "frames": []}
    atomic_write_json(run / METADATA, metadata)
    script = run / SCRIPT
    atomic_write_bytes(script, animation_script().encode())
    script.chmod(0o755)
    write_progress(run, [])
    return run


def read_metadata(run: str | os.PathLike) -> dict[str, Any]:
    with open(Path(run) / METADATA, encoding="utf-8") as f:
        return json.load(f)


PROGRESS_COLUMNS = (
    ("Epoch", "epoch"),
    ("Train Acc", "train_acc"),
    ("Val Acc", "val_acc"),
    ("Train Loss", "train_loss"),
    ("Val Loss", "val_loss"),
    ("Val Bal Acc", "val_balanced_acc"),
    ("Val Macro-F1", "val_macro_f1"),
)


def write_progress(run: Path, rows: list[dict[str, Any]]) -> None:
    """The seed's table (``Epoch | Train Acc | Val Acc | Train Loss | Val Loss``) plus the
    imbalance-aware validation metrics, one row per frame."""

    def cell(value: Any, width: int) -> str:
        if isinstance(value, bool) or value is None:
            return "-".rjust(width)
        return str(value).rjust(width) if isinstance(value, int) else f"{value:.4f}".rjust(width)

    header = " | ".join(name for name, _ in PROGRESS_COLUMNS)
    lines = [header, "-" * len(header)]
    lines += [" | ".join(cell(row.get(key), len(name)) for name, key in PROGRESS_COLUMNS) for row in rows]
    atomic_write_bytes(run / PROGRESS, ("\n".join(lines) + "\n").encode())


def summarize(run: str | os.PathLike) -> dict[str, Any]:
    """Epochs, best validation accuracy and frame count of one run folder (metadata only)."""
    run = Path(run)
    try:
        meta = read_metadata(run)
    except (OSError, ValueError):
        meta = {}
    frames = sorted(p.name for p in run.glob("epoch_*.png") if FRAME.match(p.name))
    accs = [float(FRAME.match(n).group(2)) for n in frames]
    epochs = [int(FRAME.match(n).group(1)) for n in frames]
    return {
        "run": run.name,
        "path": str(run),
        "method": meta.get("method"),
        "status": meta.get("status", "unknown" if not meta else "running"),
        "last_epoch": max(epochs, default=None),
        "total_epochs": meta.get("total_epochs"),
        "best_val_acc": max(accs, default=None),
        "frames": len(frames),
        "start_time": meta.get("start_time"),
    }


def list_runs(root: str | os.PathLike = DEFAULT_ROOT) -> list[dict[str, Any]]:
    root = Path(root)
    if not root.is_dir():
        return []
    return [summarize(p) for p in sorted(root.iterdir()) if p.is_dir() and re.match(r"^run_\d+$", p.name)]
