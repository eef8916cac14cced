"""The seed's 4-row checkpoint figure and the training-progress comparison figure (matplotlib, Agg).

Row 1: loss curves | clustering accuracy / ARI / NMI per algorithm, beside the raw-feature runs
Row 2: PCA by true state | PCA by the best clustering | choice accuracy by coherence and state | RT distributions
Row 3: t-SNE by true state | t-SNE by the best clustering | representation quality
Row 4: summary (best algorithm, baselines, oracle, losses)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COLOURS = {"engaged": "#1f77b4", "disengaged": "#d62728"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def checkpoint_figure(path: Path, analysis: dict[str, Any], arrays: dict[str, np.ndarray], history: list[dict[str, float]]) -> bytes:
    """Draw the figure; returns PNG bytes (the caller commits them with the checkpoint)."""
    import io

    plt = _pyplot()
    fig = build_checkpoint_figure(analysis, arrays, history)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    plt.close(fig)
    return buffer.getvalue()


def build_checkpoint_figure(analysis: dict[str, Any], arrays: dict[str, np.ndarray], history: list[dict[str, float]]) -> Any:
    """The checkpoint figure as a matplotlib figure (constrained layout: no empty margins)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(20, 18), layout="constrained")
    grid = fig.add_gridspec(4, 4, height_ratios=[1, 1, 1, 0.45])
    epoch = analysis["epoch"]
    fig.suptitle(f"Choice2Vec checkpoint, epoch {epoch:,}", fontsize=18)
    states = arrays["true_labels_binary"]
    best_name = analysis["best_algorithm"]

    # row 1: losses and clustering metrics
    ax = fig.add_subplot(grid[0, :2])
    if history:
        epochs = [h["epoch"] for h in history]
        for key in ("total", "behavioral", "contrastive", "diversity"):
            ax.plot(epochs, [h[key] for h in history], label=key.capitalize())
    ax.set_xlabel("epoch")
    ax.set_title("Training losses")
    ax.legend()
    ax = fig.add_subplot(grid[0, 2:])
    names = list(analysis["algorithms"])
    xs = np.arange(len(names))
    for offset, metric in zip((-0.3, -0.1, 0.1), ("accuracy", "ari", "nmi"), strict=True):
        ax.bar(
            xs + offset,
            [analysis["algorithms"][n][metric] for n in names],
            0.2,
            label=f"{metric.upper() if metric != 'accuracy' else 'Accuracy'}",
        )
    ax.bar(xs + 0.3, [analysis["raw_algorithms"][n]["accuracy"] for n in names], 0.2, label="Accuracy (raw features)", color="grey")
    for value, style, label in (
        (analysis["baselines"]["oracle"], "--", "oracle"),
        (analysis["baselines"]["majority"], ":", "majority class"),
    ):
        ax.axhline(value, linestyle=style, color="black", linewidth=1)
        ax.text(len(names) - 0.5, value, f" {label} {value:.3f}", va="bottom", ha="right", fontsize=9)
    ax.set_xticks(xs, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Clustering of representations (held-out participants)")
    ax.legend(fontsize=8, loc="lower left")

    # row 2: PCA, accuracy by coherence, RT
    pca = arrays["pca_2d"]
    _scatter(fig.add_subplot(grid[1, 0]), pca, states, "PCA by true state")
    _scatter(fig.add_subplot(grid[1, 1]), pca, arrays["best_clusters"], f"PCA by {best_name}", clusters=True)
    ax = fig.add_subplot(grid[1, 2])
    coherence, correct = arrays["difficulty"], arrays["correct"]
    levels = np.unique(coherence)
    for value, name in ((1, "engaged"), (0, "disengaged")):
        acc = [
            correct[(coherence == c) & (states == value)].mean() if np.any((coherence == c) & (states == value)) else np.nan for c in levels
        ]
        ax.plot(np.arange(len(levels)), acc, "o-", color=COLOURS[name], label=name)
    ax.axhline(0.5, color="grey", linestyle=":")
    ax.set_xticks(np.arange(len(levels)), [f"{c:g}" for c in levels])  # the task's coherence levels, as categories
    ax.set_xlabel("coherence")
    ax.set_ylabel("P(correct)")
    ax.set_title("Choice accuracy")
    ax.legend()
    ax = fig.add_subplot(grid[1, 3])
    rt = arrays["rt"]
    bins = np.linspace(0, np.quantile(rt, 0.99), 50)
    for value, name in ((1, "engaged"), (0, "disengaged")):
        ax.hist(rt[states == value], bins, alpha=0.5, density=True, color=COLOURS[name], label=name)
    ax.set_xlabel("reaction time (s)")
    ax.set_title("RT distributions")
    ax.legend()

    # row 3: t-SNE and representation quality
    tsne = arrays["tsne_2d"]
    _scatter(fig.add_subplot(grid[2, 0]), tsne, states[arrays["tsne_index"]], "t-SNE by true state")
    _scatter(fig.add_subplot(grid[2, 1]), tsne, arrays["best_clusters"][arrays["tsne_index"]], f"t-SNE by {best_name}", clusters=True)
    ax = fig.add_subplot(grid[2, 2:])
    quality = analysis["representation_quality"]
    raw_quality = analysis["raw_representation_quality"]
    keys = ["linear_separability", "distance_ratio"]
    xs = np.arange(len(keys))
    ax.bar(xs - 0.2, [quality[k] for k in keys], 0.4, label="choice2vec representations")
    ax.bar(xs + 0.2, [raw_quality[k] for k in keys], 0.4, label="raw trial features", color="grey")
    ax.set_xticks(xs, ["linear separability\n(5-fold CV accuracy)", "between / within\nclass distance"])
    ax.set_title("Representation quality")
    ax.legend()

    # row 4: summary
    ax = fig.add_subplot(grid[3, :])
    ax.axis("off")
    b = analysis["baselines"]
    best = analysis["algorithms"][best_name]
    metrics = analysis.get("training_metrics", {})
    lines = [
        f"Epoch {epoch:,}   |   held-out participants: {analysis['participants']}   trials clustered: {analysis['trials']}",
        f"Best: {best_name}  accuracy {best['accuracy']:.3f}  ARI {best['ari']:.3f}  NMI {best['nmi']:.3f}  silhouette {best['silhouette']:.3f}",
        f"Baselines: majority class {b['majority']:.3f}   k-means on raw features {b['raw_kmeans']:.3f}   "
        f"best on raw features {b['raw_best']:.3f}   oracle (true model, forward-backward) {b['oracle']:.3f}",
        f"Gap to oracle {b['oracle'] - best['accuracy']:+.3f}   gain over raw k-means {best['accuracy'] - b['raw_kmeans']:+.3f}   "
        f"linear separability {quality['linear_separability']:.3f} (raw {raw_quality['linear_separability']:.3f})",
        "Losses: " + "   ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
    ]
    for i, line in enumerate(lines):
        ax.text(0.01, 0.95 - i * 0.2, line, fontsize=13, family="monospace", transform=ax.transAxes, va="top")
    return fig


def _scatter(ax, xy: np.ndarray, labels: np.ndarray, title: str, clusters: bool = False) -> None:
    if clusters:
        for value in np.unique(labels):
            pick = labels == value
            ax.scatter(xy[pick, 0], xy[pick, 1], s=4, alpha=0.6, label="noise" if value < 0 else f"cluster {value}")
    else:
        for value, name in ((1, "engaged"), (0, "disengaged")):
            pick = labels == value
            ax.scatter(xy[pick, 0], xy[pick, 1], s=4, alpha=0.6, color=COLOURS[name], label=name)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8)


def comparison_figure(path: Path, rows: list[dict[str, Any]]) -> Path:
    """training_progress_comparison.png: metrics over checkpoints, the best epoch, the trend."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(20, 6))
    epochs = np.array([r["epoch"] for r in rows])
    best_acc = np.array([r["best_accuracy"] for r in rows])
    ax = axes[0]
    ax.plot(epochs, best_acc, "o-", label="best clustering")
    ax.plot(epochs, [r["baselines"]["raw_kmeans"] for r in rows], "s--", color="grey", label="k-means on raw features")
    ax.plot(epochs, [r["baselines"]["oracle"] for r in rows], "k:", label="oracle")
    ax.plot(epochs, [r["baselines"]["majority"] for r in rows], ":", color="grey", label="majority class")
    top = int(np.argmax(best_acc))
    ax.scatter(
        [epochs[top]], [best_acc[top]], s=200, facecolors="none", edgecolors="red", linewidths=2, label=f"best epoch {epochs[top]:,}"
    )
    if len(rows) >= 2:
        slope, intercept = np.polyfit(epochs, best_acc, 1)
        ax.plot(epochs, slope * epochs + intercept, color="orange", alpha=0.7, label=f"trend {slope * 10000:+.4f} per 10k epochs")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title("Best clustering accuracy over checkpoints")
    ax.legend(fontsize=8)
    ax = axes[1]
    for name in rows[-1]["algorithms"]:
        ax.plot(epochs, [r["algorithms"][name]["accuracy"] for r in rows], ".-", label=name)
    ax.set_xlabel("epoch")
    ax.set_title("Accuracy per algorithm")
    ax.legend(fontsize=7)
    ax = axes[2]
    for key in ("ari", "nmi"):
        ax.plot(epochs, [r["algorithms"][r["best_algorithm"]][key] for r in rows], "o-", label=f"{key.upper()} (best algorithm)")
    ax.plot(epochs, [r["representation_quality"]["linear_separability"] for r in rows], "s-", label="linear separability")
    ax.set_xlabel("epoch")
    ax.set_title("Agreement and separability")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
