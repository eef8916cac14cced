"""Vector quantisation with an EMA codebook.

* The codebook is a buffer updated by exponential moving averages of the vectors assigned to
  each code — never an optimiser parameter.
* The only loss term is the commitment loss, beta * ||z - sg(q)||^2, which trains the encoder
  (with EMA updates there is no codebook loss term to confuse it with).
* Codes are initialised by k-means on the first training batch.
* Dead codes: a code whose EMA usage falls below ``dead_threshold`` percent of the mean usage is
  re-seeded from vectors of the current batch. A healthy codebook is left alone.
* Under torchrun the quantiser sees the global batch (core's ``BatchShare`` gathers every rank's
  rows), so the EMA statistics are those of the global batch on every rank; the k-means
  initialisation and each dead-code reset are made once and broadcast from rank 0.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class EMAQuantizer(nn.Module):
    def __init__(
        self, num_codes: int, dim: int, decay: float = 0.99, commitment: float = 0.25, dead_threshold: float = 10.0, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.num_codes, self.dim, self.decay, self.commitment, self.dead_threshold, self.eps = (
            num_codes,
            dim,
            decay,
            commitment,
            dead_threshold,
            eps,
        )
        self.register_buffer("codebook", torch.zeros(num_codes, dim))
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_sum", torch.zeros(num_codes, dim))
        self.register_buffer("usage", torch.ones(num_codes))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _kmeans_init(self, z: torch.Tensor) -> None:
        import warnings

        from sklearn.cluster import KMeans

        data = z.detach().cpu().double().numpy()
        k = min(self.num_codes, len(data))
        from threadpoolctl import threadpool_limits

        with warnings.catch_warnings(), threadpool_limits(1):  # one thread: the same centres whatever the load
            warnings.simplefilter("ignore")  # fewer distinct vectors than codes: the reset takes care of it
            centers = torch.from_numpy(KMeans(n_clusters=k, n_init=1, random_state=0).fit(data).cluster_centers_).to(z)
        if k < self.num_codes:  # fewer vectors than codes: the rest start at random batch vectors
            extra = z[torch.randint(len(z), (self.num_codes - k,), device=z.device)]
            centers = torch.cat([centers, extra])
        self.codebook.copy_(centers)
        self.embed_sum.copy_(centers)
        self.cluster_size.fill_(1.0)
        self.usage.fill_(1.0 / self.num_codes)
        self.initialized.fill_(True)

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each row of ``z`` (N, D)."""
        distances = z.pow(2).sum(1, keepdim=True) - 2 * z @ self.codebook.t() + self.codebook.pow(2).sum(1)[None]
        return distances.argmin(1)

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, indices: torch.Tensor) -> None:
        onehot = F.one_hot(indices, self.num_codes).type_as(z)
        counts = onehot.sum(0)
        sums = onehot.t() @ z
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.num_codes * self.eps) * total
        updated = self.embed_sum / smoothed[:, None]
        alive = self.cluster_size > self.eps  # a code nothing was ever assigned to keeps its place
        self.codebook.copy_(torch.where(alive[:, None], updated, self.codebook))
        self.usage.mul_(self.decay).add_(counts / max(len(z), 1), alpha=1 - self.decay)

    @torch.no_grad()
    def reset_dead_codes(self, z: torch.Tensor, generator: torch.Generator | None = None) -> int:
        """Re-seed codes used less than ``dead_threshold``% of the mean usage; returns how many."""
        threshold = self.usage.mean() * self.dead_threshold / 100.0
        dead = torch.nonzero(self.usage < threshold).flatten()
        if len(dead) == 0:
            return 0
        picks = torch.randint(len(z), (len(dead),), generator=generator, device="cpu").to(z.device)
        self.codebook[dead] = z[picks].detach()
        self.embed_sum[dead] = z[picks].detach()
        self.cluster_size[dead] = 1.0
        self.usage[dead] = self.usage.mean()
        return len(dead)

    def state_tensors(self) -> tuple[torch.Tensor, ...]:
        """The buffers a rank must share with the others (what an initialisation or reset changes)."""
        return self.codebook, self.cluster_size, self.embed_sum, self.usage, self.initialized

    def forward(self, z: torch.Tensor, share=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(straight-through quantised z, code indices, commitment loss). ``share``: core's
        ``BatchShare`` of a multi-rank step (``z`` is then the gathered global batch)."""
        if self.training and not bool(self.initialized):
            self._kmeans_init(z)
            if share is not None:
                share.broadcast_(*self.state_tensors())
        indices = self.assign(z.detach())
        quantized = self.codebook[indices]
        loss = self.commitment * F.mse_loss(z, quantized.detach())
        if self.training:
            self.ema_update(z.detach(), indices)
        return z + (quantized - z).detach(), indices, loss

    def perplexity(self, indices: torch.Tensor) -> float:
        probs = torch.bincount(indices, minlength=self.num_codes).float() / max(len(indices), 1)
        return float(torch.exp(-(probs * (probs + 1e-10).log()).sum()))
