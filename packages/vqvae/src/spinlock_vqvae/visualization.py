"""Latent snapshots for vizwatch (optional): each category's quantised latents, coloured by category.

A trainer-core plotter (vizwatch when installed) receives, at each validation, the quantised
latents of a fixed set of training and validation samples, one point per (sample, category),
labelled by category. The "prediction" of a point is the category whose training centroid is
nearest: its accuracy says how distinguishable the categories' latents are, the picture that the
orthogonality loss shapes. Nothing is computed unless a plotter draws that epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from spinlock_vqvae.model import CategoricalVQVAE
from trainer_core import CodebookData, SplitData


def category_names(groups: list[np.ndarray], feature_names: list[str]) -> list[str]:
    """ "c3 spectral (24)": index, the family most of its features come from, feature count."""
    names = []
    for c, g in enumerate(groups):
        families = [feature_names[i].split(".")[0] for i in g]
        common = max(set(families), key=families.count)
        names.append(f"c{c} {common} ({len(g)})")
    return names


def _latents(model: CategoricalVQVAE, parts: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        quantized = model(parts)["quantized"]
    model.train(was_training)
    points = torch.cat(quantized).numpy()
    labels = np.repeat(np.arange(len(quantized)), len(parts[0]))
    return points, labels


def splits_factory(
    model: CategoricalVQVAE, train: list[torch.Tensor], val: list[torch.Tensor], points: int = 600
) -> Callable[[], dict[str, SplitData]]:
    """A callable giving {"train", "val"} SplitData of the first ``points`` samples of each split."""
    take_train = [p[:points] for p in train]
    take_val = [p[:points] for p in val]

    def make() -> dict[str, SplitData]:
        train_x, train_y = _latents(model, take_train)
        val_x, val_y = _latents(model, take_val)
        centroids = np.stack([train_x[train_y == c].mean(0) for c in range(len(train))])

        def nearest(x: np.ndarray) -> np.ndarray:
            return ((x[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)

        return {
            "train": SplitData(train_x, train_y, nearest(train_x)),
            "val": SplitData(val_x, val_y, nearest(val_x)),
        }

    return make


def options(enabled: bool, method: str = "tsne", every: int = 10, root: str | None = None) -> dict[str, Any]:
    return {"enabled": enabled, "method": method, "every": every, **({"root": root} if root else {})}


def codebooks(model: CategoricalVQVAE, names: list[str], tokens: np.ndarray | None = None) -> list[CodebookData]:
    """Every category's three codebooks with their usage. With ``tokens`` (N, categories, 3, e.g. the
    training split encoded), usage is each code's share of the rows and a dead code is one no row
    uses; without, usage is the quantiser's EMA usage and dead is its own rule (below
    ``dead_code_threshold`` percent of the mean usage: what the next reset would re-seed)."""
    out = []
    for c, coder in enumerate(model.coders):
        for lv, level in enumerate(coder.levels):
            if tokens is not None:
                counts = np.bincount(tokens[:, c, lv].astype(np.int64), minlength=level.num_codes).astype(np.float64)
                usage, dead = counts / max(counts.sum(), 1.0), counts == 0
            else:
                usage = level.usage.detach().double().numpy()
                dead = usage < usage.mean() * level.dead_threshold / 100.0
            out.append(CodebookData(group=names[c], level=lv + 1, vectors=level.codebook.detach().numpy().copy(), usage=usage, dead=dead))
    return out


def codebook_options(method: str = "pca", output: str | None = None) -> dict[str, Any]:
    """Options of a codebook event for vizwatch (method of the 2-D embedding, where to write)."""
    return {"codebook_method": method, **({"codebook_output": str(output)} if output else {})}
