"""Curves of any run from its ``metrics.jsonl``: one panel per metric, training and validation apart,
several runs overlaid.

Every record of core's metrics log is ``{"step", "epoch", "split", "time", <metric>: value...}``.
A metric's panel name drops a ``train_`` / ``val_`` prefix, and its curve is named by that prefix or
else by the record's split, so ``train_loss`` and ``val_loss`` (or ``loss`` logged under the train
and val splits) share the panel ``loss`` as two curves. The x axis is the step (the epoch where a
run logs no steps). matplotlib is imported only here (``pip install trainer-core[plot]``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer_core.errors import UsageError

METRICS_FILE = "metrics.jsonl"
POSITION_KEYS = {"step", "epoch", "split", "time"}
SPLIT_PREFIXES = {"train_": "train", "val_": "val", "validation_": "val", "test_": "test"}
FIGURE_FILE = "metrics.png"


@dataclass
class Curve:
    run: str
    metric: str
    split: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)


def find_metrics(run_dir: str | Path) -> Path:
    """The run's ``metrics.jsonl``: in the folder itself, else the only one below it (two levels)."""
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.name == METRICS_FILE:
        return run_dir
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a folder: give a run directory (the folder holding {METRICS_FILE})")
    direct = run_dir / METRICS_FILE
    if direct.is_file():
        return direct
    below = sorted(set(run_dir.glob(f"*/{METRICS_FILE}")) | set(run_dir.glob(f"*/*/{METRICS_FILE}")))
    if len(below) == 1:
        return below[0]
    if below:
        shown = ", ".join(str(p.parent) for p in below[:3])
        raise UsageError(f"{run_dir} holds {len(below)} runs ({shown}...): give each run directory")
    raise UsageError(f"{run_dir} has no {METRICS_FILE}: give the directory of a run trained through trainer-core")


def split_name(key: str, split: str) -> tuple[str, str]:
    """(panel metric, curve split) of one logged key."""
    for prefix, name in SPLIT_PREFIXES.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix) :], name
    return key, split or "train"


def read_curves(path: Path, run: str) -> list[Curve]:
    """Every numeric metric of one metrics log as curves (unreadable lines are skipped)."""
    curves: dict[tuple[str, str], Curve] = {}
    uses_steps = False
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash: the rest is still a run's history
            if isinstance(record, dict):
                records.append(record)
                uses_steps |= isinstance(record.get("step"), (int, float)) and record.get("step", 0) > 0
    for record in records:
        x = record.get("step") if uses_steps else record.get("epoch")
        if not isinstance(x, (int, float)):
            continue
        for key, value in record.items():
            if key in POSITION_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            metric, split = split_name(key, str(record.get("split") or "train"))
            curve = curves.setdefault((metric, split), Curve(run, metric, split))
            curve.x.append(float(x))
            curve.y.append(float(value))
    for curve in curves.values():  # a resumed run logs its last steps again: keep the latest value of each x
        latest = dict(zip(curve.x, curve.y, strict=True))
        curve.x, curve.y = list(latest), list(latest.values())
    return list(curves.values())


def run_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Short distinct names: the folder name, or the path from the runs' common parent."""
    names = [p.name or str(p) for p in run_dirs]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in run_dirs]


def plot_runs(run_dirs: Sequence[str | Path], output: str | Path, metrics: Iterable[str] | None = None, columns: int = 3) -> dict[str, Any]:
    """Write the figure of ``run_dirs`` to ``output`` (PNG, atomically); returns its panels and curves."""
    fig, drawn = build_figure(run_dirs, metrics, columns)
    return {"output": str(save_figure(fig, output)), **drawn}


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG atomically (a reader never sees half a picture), creating
    the folder, and close it."""
    import io

    from trainer_core.checkpoint.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    if getattr(fig.canvas, "manager", None) is not None:  # a pyplot figure: release it
        import matplotlib.pyplot as plt

        plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def build_figure(run_dirs: Sequence[str | Path], metrics: Iterable[str] | None = None, columns: int = 3) -> tuple[Any, dict[str, Any]]:
    """The matplotlib figure of ``run_dirs`` and what it holds (runs, panels with their curve counts)."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("core plot needs matplotlib: pip install 'trainer-core[plot]'") from None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    dirs = [Path(d) for d in run_dirs]
    labels = run_labels(dirs)
    curves = [c for d, label in zip(dirs, labels, strict=True) for c in read_curves(find_metrics(d), label)]
    available = list(dict.fromkeys(c.metric for c in curves))
    wanted = list(dict.fromkeys(metrics)) if metrics else available
    missing = [m for m in wanted if m not in available]
    if missing:
        raise UsageError(f"no metric named {', '.join(missing)} in these runs; they log: {', '.join(available) or 'nothing'}")
    if not wanted:
        raise UsageError("these runs have logged no numeric metric yet")
    cols = min(columns, len(wanted))
    rows = math.ceil(len(wanted) / cols)
    # a Figure of its own, not pyplot's: a run may end (and draw) in any thread, beside others
    fig = Figure(figsize=(4.6 * cols, 3.3 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    styles = {"train": "-", "val": "--", "test": ":"}
    colours = matplotlib.colormaps["tab10"]
    panels = []
    for ax, metric in zip(axes.flat, wanted, strict=False):
        drawn = 0
        for r, label in enumerate(labels):
            for curve in (c for c in curves if c.metric == metric and c.run == label):
                marker = "o" if len(curve.x) <= 30 else None
                ax.plot(curve.x, curve.y, styles.get(curve.split, "-."), color=colours(r % 10), marker=marker, markersize=3,
                        label=f"{label} {curve.split}" if len(labels) > 1 else curve.split)  # fmt: skip
                drawn += 1
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.set_ylabel(metric, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))  # step labels of long runs never collide
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        panels.append({"metric": metric, "curves": drawn})
    for ax in list(axes.flat)[len(wanted) :]:
        ax.set_visible(False)
    fig.suptitle(" vs ".join(labels) if len(labels) > 1 else labels[0], fontsize=11)
    return fig, {"runs": [str(d) for d in dirs], "panels": panels}
