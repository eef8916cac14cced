"""Codebook pictures of a vector-quantised model: one panel per level, every code one point.

Within a level, the codes of every group (a vqvae category) are embedded together in 2-D
(t-SNE, UMAP or PCA of the code vectors), coloured by group; a point's area follows its usage
(share of assignments, square-root scaled so rare codes stay visible) and dead codes are drawn as
black crosses. The title of each panel says how many codes are used and dead. Drawn from
``visualize_checkpoint`` when the event carries ``codebooks`` (core's ``CodebookData``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vizwatch.embedding import Embedder
from vizwatch.render import class_colors

FILE_NAME = "codebooks_epoch_{epoch:03d}.png"


def render_codebooks(codebooks: Sequence[Any], path: str | Path, *, method: str = "pca", title: str = "", seed: int = 0) -> dict[str, Any]:
    """Write the picture of ``codebooks`` (CodebookData) to ``path`` (PNG, written atomically);
    returns what was drawn: the path, the method used and per panel its level, codes and dead codes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainer_core import save_figure

    levels = sorted({c.level for c in codebooks})
    groups = list(dict.fromkeys(c.group for c in codebooks))
    if len(groups) <= 10:
        colours = dict(zip(groups, class_colors(len(groups)), strict=True))
    else:  # more groups than the fixed palette: matplotlib's 20-colour map, then repeat
        cmap = plt.get_cmap("tab20")
        colours = {g: cmap(i % 20) for i, g in enumerate(groups)}
    fig, axes = plt.subplots(1, len(levels), figsize=(5.2 * len(levels), 5.0), squeeze=False, layout="constrained")
    used_method, panels = method, []
    for ax, level in zip(axes[0], levels, strict=True):
        books = [c for c in codebooks if c.level == level]
        vectors = np.concatenate([np.asarray(c.vectors, dtype=np.float64) for c in books])
        embedder = Embedder(method if len(vectors) > 5 else "pca", seed=seed)
        used_method = embedder.method
        points = embedder.embed(vectors) if len(vectors) > 2 else np.c_[vectors[:, :1], np.zeros(len(vectors))]
        start, dead_total, used_total = 0, 0, 0
        for book in books:
            k = len(book.vectors)
            xy = points[start : start + k]
            start += k
            usage = np.asarray(book.usage, dtype=np.float64) if book.usage is not None else np.full(k, 1.0 / k)
            dead = np.asarray(book.dead, dtype=bool) if book.dead is not None else np.zeros(k, dtype=bool)
            share = usage / max(usage.sum(), 1e-12)
            sizes = 8 + 400 * np.sqrt(share)
            alive = ~dead
            ax.scatter(xy[alive, 0], xy[alive, 1], s=sizes[alive], color=colours[book.group], alpha=0.65, linewidths=0, label=book.group)
            if dead.any():
                ax.scatter(xy[dead, 0], xy[dead, 1], s=30, marker="x", color="black", linewidths=1.2)
            dead_total += int(dead.sum())
            used_total += int((usage > 0).sum())
        codes = len(vectors)
        ax.set_title(f"level {level}: {codes} codes in {len(books)} codebooks, {dead_total} dead", fontsize=10)
        ax.set_xlabel(f"{used_method.upper()} 1")
        ax.set_ylabel(f"{used_method.upper()} 2")
        ax.tick_params(labelsize=8)
        panels.append({"level": level, "codes": codes, "dead": dead_total, "codebooks": len(books)})
    handles, labels = axes[0][0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles.append(Line2D([], [], marker="x", color="black", linestyle="", label="dead code"))
    labels.append("dead code")
    fig.legend(handles, labels, loc="outside right center", fontsize=8, markerscale=0.6, title="codebook (area: usage)", title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return {"path": str(save_figure(fig, path, dpi=110)), "method": used_method, "panels": panels}


def draw_event(event: Any, checkpoint: Any) -> dict[str, Any]:
    """The picture of ``event.codebooks`` for ``checkpoint``: ``options["codebook_output"]`` or
    ``<run_dir>/codebooks_epoch_NNN.png``; method ``options["codebook_method"]`` (default PCA)."""
    options = event.options or {}
    output = options.get("codebook_output") or Path(event.run_dir) / FILE_NAME.format(epoch=int(event.epoch or 0))
    name = Path(str(getattr(checkpoint, "path", "") or "")).name
    title = f"{event.package or 'model'} codebooks, epoch {event.epoch}" + (f" ({name})" if name else "")
    return render_codebooks(event.codebooks, output, method=options.get("codebook_method", "pca"), title=title, seed=int(options.get("seed", 0)))
