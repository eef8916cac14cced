"""One frame: training set by true class (left), validation with misclassifications as red X (right)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8"]


def class_colors(num_classes: int) -> list[str]:
    """Fixed colours per class index, the same in every frame (red is kept for errors)."""
    return [PALETTE[i % len(PALETTE)] for i in range(num_classes)]


@dataclass
class FrameInfo:
    epoch: int
    total_epochs: int | None
    metrics: dict[str, float]
    method: str


def _title(info: FrameInfo) -> str:
    m = info.metrics
    epoch = f"Epoch {info.epoch}" + (f"/{info.total_epochs}" if info.total_epochs else "")

    def fmt(key: str) -> str:
        value = m.get(key)
        return "-" if value is None else f"{value:.4f}"

    return (
        f"{epoch} ({info.method.upper()})\n"
        f"train: acc {fmt('train_acc')}  loss {fmt('train_loss')}   |   "
        f"val: acc {fmt('val_acc')}  balanced acc {fmt('val_balanced_acc')}  macro-F1 {fmt('val_macro_f1')}  loss {fmt('val_loss')}"
    )


def render_frame(
    path: str | Path,
    train_xy: np.ndarray,
    train_labels: np.ndarray,
    val_xy: np.ndarray,
    val_labels: np.ndarray,
    val_predictions: np.ndarray,
    class_names: list[str],
    limits: tuple[float, float, float, float],
    info: FrameInfo,
) -> dict[str, int]:
    """Draw and save one PNG; returns counts of what was drawn (for checks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from trainer_core import save_figure

    colors = class_colors(len(class_names))
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 7), dpi=90)
    for c, name in enumerate(class_names):
        mask = train_labels == c
        left.scatter(train_xy[mask, 0], train_xy[mask, 1], s=14, alpha=0.75, color=colors[c], label=f"{name} ({int(mask.sum())})")
    wrong = val_predictions != val_labels
    for c in range(len(class_names)):
        mask = (val_labels == c) & ~wrong
        right.scatter(val_xy[mask, 0], val_xy[mask, 1], s=18, alpha=0.8, color=colors[c])
    errors = right.scatter(val_xy[wrong, 0], val_xy[wrong, 1], s=120, marker="x", color="red", linewidths=2.5, zorder=3)
    for ax, name in ((left, "Training set (true class)"), (right, f"Validation set ({int(wrong.sum())} misclassified)")):
        ax.set_xlim(limits[0], limits[1])
        ax.set_ylim(limits[2], limits[3])
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], marker="o", linestyle="", color=colors[c], label=n) for c, n in enumerate(class_names)]
    handles.append(Line2D([], [], marker="x", linestyle="", color="red", markersize=10, markeredgewidth=2.5, label="misclassified"))
    right.legend(handles=handles, loc="upper right", fontsize=9, framealpha=0.85)
    left.legend(loc="upper right", fontsize=9, framealpha=0.85, title="class (points)")
    fig.suptitle(_title(info), fontsize=12)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)  # atomic: a crash never leaves half a frame for `vizwatch animate`
    return {"train_points": len(train_xy), "val_points": len(val_xy), "red_x": len(errors.get_offsets())}


def fixed_limits(points: np.ndarray, margin: float = 0.25) -> tuple[float, float, float, float]:
    lo, hi = points.min(0), points.max(0)
    pad = (hi - lo) * margin + 1e-9
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def widen(limits: tuple[float, float, float, float], points: np.ndarray) -> tuple[float, float, float, float]:
    """Limits never shrink; they grow only if a frame's points would fall outside."""
    lo, hi = points.min(0), points.max(0)
    return min(limits[0], lo[0]), max(limits[1], hi[0]), min(limits[2], lo[1]), max(limits[3], hi[1])
