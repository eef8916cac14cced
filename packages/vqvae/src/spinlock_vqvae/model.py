"""The categorical hierarchical VQ-VAE.

Each discovered category c (d_c normalised features) has its own encoder to a latent of the
shared size D, three residual quantisation levels (level l quantises what levels < l left; its
codebook size comes from ``compression_ratios``), and its own decoder back to d_c features. A
partial decoder reads level 1 alone (the informativeness loss keeps the coarse token useful).
A sample's tokens are its code indices: one per category and level.

Sizes from the data (documented in the README): D = ``embedding_dim``; the codebook of level l
has round(sqrt(N_train) * r_l) codes, clipped to [8, ``max_codebook_size``], where r_l are the
compression ratios (0.5:1:1.5 gives a coarse small codebook and finer larger ones). A category's
encoder and decoders are ``category_width(d_c, hidden_size)`` wide: twice its feature count, at
least 32 and at most ``hidden_size`` (a 3-feature category does not need a 128-wide network, and
encoding cost follows the widths).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from spinlock_vqvae.quantizer import EMAQuantizer


def parse_ratios(text: str) -> list[float]:
    ratios = [float(x) for x in str(text).split(":")]
    if len(ratios) != 3 or min(ratios) <= 0:
        raise ValueError(f"compression_ratios must be three positive numbers like '0.5:1:1.5', not {text!r}")
    return ratios


def codebook_sizes(train_samples: int, ratios: list[float], max_size: int = 512) -> list[int]:
    return [int(min(max_size, max(8, round(math.sqrt(train_samples) * r)))) for r in ratios]


def category_width(features: int, hidden: int) -> int:
    """Width of a category's encoder/decoder layers: 2 x its features, clipped to [32, hidden]."""
    return min(hidden, max(32, 2 * features))


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, outputs))


class CategoryCoder(nn.Module):
    def __init__(
        self, features: int, latent: int, codes: list[int], hidden: int, decay: float, commitment: float, dead_threshold: float
    ) -> None:
        super().__init__()
        self.encoder = _mlp(features, hidden, latent)
        self.levels = nn.ModuleList(EMAQuantizer(k, latent, decay, commitment, dead_threshold) for k in codes)
        self.decoder = _mlp(latent, hidden, features)
        self.partial_decoder = _mlp(latent, hidden, features)


class CategoricalVQVAE(nn.Module):
    def __init__(
        self,
        group_sizes: list[int],
        latent: int,
        codes: list[int],
        hidden: int = 128,
        decay: float = 0.99,
        commitment: float = 0.25,
        dead_threshold: float = 10.0,
    ) -> None:
        super().__init__()
        self.group_sizes, self.latent, self.codes = list(group_sizes), latent, list(codes)
        self.coders = nn.ModuleList(
            CategoryCoder(d, latent, codes, category_width(d, hidden), decay, commitment, dead_threshold) for d in group_sizes
        )

    def forward(
        self, parts: list[torch.Tensor], reset_dead: bool = False, generator: torch.Generator | None = None, share=None
    ) -> dict[str, object]:
        """``parts[c]`` is category c's normalised features (B, d_c). ``reset_dead`` re-seeds dead
        codes of every level from this batch first. Under torchrun ``share`` (core's
        ``BatchShare``) makes the latents, codes and quantised vectors those of the global batch
        (the same on every rank); the reconstructions are of this rank's rows only."""
        out: dict[str, list] = {"latents": [], "quantized": [], "indices": [], "recon": [], "partial": [], "commitment": [], "reset": []}
        mine = share.local if share is not None else (lambda t: t)
        for coder, x in zip(self.coders, parts, strict=True):
            z = coder.encoder(x)
            if share is not None:
                z = share.gather(z)
            residual, total, commitment = z, torch.zeros_like(z), z.new_zeros(())
            level_indices, first = [], None
            for level in coder.levels:
                if reset_dead:
                    out["reset"].append(level.reset_dead_codes(residual.detach(), generator))
                    if share is not None:
                        share.broadcast_(*level.state_tensors())
                q, idx, loss = level(residual, share)
                total = total + q
                residual = residual - q.detach()
                commitment = commitment + loss
                level_indices.append(idx)
                if first is None:
                    first = q
            out["latents"].append(z)
            out["quantized"].append(total)
            out["indices"].append(torch.stack(level_indices, 1))
            out["recon"].append(coder.decoder(mine(total)))
            out["partial"].append(coder.partial_decoder(mine(first)))
            out["commitment"].append(commitment)
        return out

    @torch.no_grad()
    def tokenize(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """Token ids (B, categories, levels): the encoders and nearest codes only."""
        out = []
        for coder, x in zip(self.coders, parts, strict=True):
            residual, ids = coder.encoder(x), []
            for level in coder.levels:
                idx = level.assign(residual)
                residual = residual - level.codebook[idx]
                ids.append(idx)
            out.append(torch.stack(ids, 1))
        return torch.stack(out, 1)

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Reconstructions from tokens (B, categories, levels)."""
        outs = []
        for c, coder in enumerate(self.coders):
            total = sum(level.codebook[tokens[:, c, lv]] for lv, level in enumerate(coder.levels))
            outs.append(coder.decoder(total))
        return outs


def orthogonality(latents: list[torch.Tensor]) -> torch.Tensor:
    """Mean absolute cosine similarity between the latents of different categories (differentiable)."""
    if len(latents) < 2:
        return latents[0].new_zeros(())
    z = F.normalize(torch.stack(latents, 1), dim=-1)  # (B, C, D)
    cos = z @ z.transpose(1, 2)
    c = cos.shape[1]
    off = ~torch.eye(c, dtype=torch.bool, device=cos.device)
    return cos[:, off].abs().mean()


def topographic_loss(inputs: torch.Tensor, latents: torch.Tensor, pairs: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """1 - Pearson correlation of input and latent distances over random distinct pairs (differentiable)."""
    n = len(inputs)
    i = torch.randint(n, (pairs,), generator=generator)
    j = (i + torch.randint(1, n, (pairs,), generator=generator)) % n  # never the same sample: no zero diagonal
    a = (inputs[i] - inputs[j]).norm(dim=1)
    b = (latents[i] - latents[j]).norm(dim=1)
    a, b = a - a.mean(), b - b.mean()
    return 1 - (a * b).sum() / (a.norm() * b.norm() + 1e-8)
