"""Raw feature rows to token ids, fast: the inference half of the model, batched across categories.

`CategoricalVQVAE.tokenize` runs each category's encoder and levels one after the other: about a
hundred small matrix products per batch, each too narrow to use the cores well. Here categories
whose encoders have the same width are stacked and run as one batched product (smaller inputs are
zero-padded, which adds exact zeros), and all categories share the latent size and codebook sizes,
so each level's nearest-code search is one batched product and one argmin for every category.
Normalisation is applied to the raw columns once. Only inference needs this; training keeps the
per-category modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from spinlock_vqvae.model import CategoricalVQVAE


class _WidthBucket:
    """Categories whose encoders have the same width, stacked (n, in, out) for `baddbmm`."""

    def __init__(self, categories: list[int], model: CategoricalVQVAE, columns: list[np.ndarray], zero_column: int) -> None:
        self.categories = categories
        width = max(len(columns[c]) for c in categories)
        # gather index (n, width): each category's columns, padded with a column that is always 0
        self.gather = torch.tensor(
            np.stack([np.pad(columns[c], (0, width - len(columns[c])), constant_values=zero_column) for c in categories]), dtype=torch.long
        )
        layers = [[model.coders[c].encoder[i] for c in categories] for i in (0, 2, 4)]
        first = torch.zeros(len(categories), width, layers[0][0].out_features)
        for k, layer in enumerate(layers[0]):
            first[k, : layer.in_features] = layer.weight.detach().t()
        self.weights = [first] + [torch.stack([layer.weight.detach().t() for layer in level]) for level in layers[1:]]
        self.biases = [torch.stack([layer.bias.detach() for layer in level])[:, None, :] for level in layers]

    def latents(self, normalised: torch.Tensor) -> torch.Tensor:
        n, width = self.gather.shape
        x = normalised.index_select(1, self.gather.reshape(-1)).view(-1, n, width).transpose(0, 1)  # (n, B, width)
        h = F.gelu(torch.baddbmm(self.biases[0], x, self.weights[0]))
        h = F.gelu(torch.baddbmm(self.biases[1], h, self.weights[1]))
        return torch.baddbmm(self.biases[2], h, self.weights[2])  # (n, B, latent)


class Tokenizer:
    """``Tokenizer(model, groups, means, stds)(rows)`` gives token ids (B, categories, levels).

    ``rows`` are raw (unnormalised) feature rows, float32, with the model's feature order.
    """

    def __init__(
        self, model: CategoricalVQVAE, groups: Sequence[np.ndarray], means: Sequence[np.ndarray], stds: Sequence[np.ndarray]
    ) -> None:
        features = sum(len(g) for g in groups)
        self.mean = torch.zeros(features + 1)
        self.std = torch.ones(features + 1)
        for g, m, s in zip(groups, means, stds, strict=True):
            self.mean[torch.as_tensor(g)] = torch.as_tensor(m, dtype=torch.float32)
            self.std[torch.as_tensor(g)] = torch.as_tensor(s, dtype=torch.float32)
        # the extra last column is the zero padding (mean 0, std 1 on an appended 0)
        columns = [np.asarray(g, dtype=np.int64) for g in groups]
        widths: dict[int, list[int]] = {}
        for c, coder in enumerate(model.coders):
            widths.setdefault(coder.encoder[0].out_features, []).append(c)
        self.buckets = [_WidthBucket(cats, model, columns, features) for cats in widths.values()]
        self.order = torch.tensor(np.argsort(np.concatenate([b.categories for b in self.buckets])), dtype=torch.long)
        levels = range(len(model.codes))
        self.codebooks = [torch.stack([coder.levels[lv].codebook for coder in model.coders]) for lv in levels]  # (C, K, D)
        self.transposed = [(-2 * cb).transpose(1, 2).contiguous() for cb in self.codebooks]  # (C, D, K)
        self.norms = [cb.pow(2).sum(2)[:, None, :] for cb in self.codebooks]  # (C, 1, K)
        self.flat = [cb.reshape(-1, cb.shape[-1]) for cb in self.codebooks]
        self.offsets = [torch.arange(len(model.coders))[:, None] * cb.shape[1] for cb in self.codebooks]

    @torch.no_grad()
    def __call__(self, rows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
        padded = torch.cat([x, x.new_zeros(len(x), 1)], 1)
        normalised = padded.sub_(self.mean).div_(self.std)
        z = torch.cat([bucket.latents(normalised) for bucket in self.buckets])[self.order]  # (C, B, D)
        out = np.empty((len(x), len(self.codebooks[0]), len(self.codebooks)), dtype=np.int32)
        for lv, flat in enumerate(self.flat):
            # ||z - c||^2 without the ||z||^2 term, which does not change the nearest code
            distances = torch.baddbmm(self.norms[lv], z, self.transposed[lv])  # (C, B, K)
            ids = torch.from_numpy(distances.numpy().argmin(2))  # numpy's argmin is faster on short rows
            out[:, :, lv] = ids.t().numpy()
            if lv + 1 < len(self.flat):
                z = z - flat.index_select(0, (ids + self.offsets[lv]).reshape(-1)).view_as(z)
        return out
