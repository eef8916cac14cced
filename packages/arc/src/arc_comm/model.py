"""The ARC communication models (torch), with the seed's constructor signatures.

``ARCEncoder`` embeds each cell's colour (10 colours + the padding colour), runs
``num_conv_layers`` 3x3 convolutions and pools over the real cells (mean and max) into a
``latent_dim`` vector. ``ARCAutoencoder`` puts a bottleneck after it:

* ``communication``: a sender emits ``max_length`` symbols from ``vocab_size``, each drawn with
  straight-through Gumbel-softmax at ``temperature`` (one-hot forward, soft gradient); a receiver
  reads the message into a ``hidden_dim`` vector;
* ``autoencoder``: the latent itself, through a linear layer (a continuous channel).

and a task head on the receiver's vector:

* ``selection``: score the sender's grid and ``num_distractors`` other grids (encoded by the same
  encoder) by a dot product; cross-entropy on the index of the true grid;
* ``reconstruction``: predict the grid's height and width (1..max_grid_size) and each cell's colour;
* ``puzzle_classification``: which of ``num_classes`` ARC tasks the grid comes from.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

PAD = 10


class ARCEncoder(nn.Module):
    def __init__(self, num_colors: int = 10, embedding_dim: int = 16, hidden_dim: int = 64, latent_dim: int = 64, num_conv_layers: int = 3):
        super().__init__()
        self.num_colors, self.embedding_dim, self.hidden_dim, self.latent_dim = num_colors, embedding_dim, hidden_dim, latent_dim
        self.num_conv_layers = num_conv_layers
        self.embed = nn.Embedding(num_colors + 1, embedding_dim)
        layers, channels = [], embedding_dim
        for _ in range(num_conv_layers):
            layers += [nn.Conv2d(channels, hidden_dim, 3, padding=1), nn.GELU()]
            channels = hidden_dim
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(2 * hidden_dim + 2, latent_dim)

    def forward(self, grids: torch.Tensor) -> torch.Tensor:
        """grids (B, S, S) colour ids (10 = padding) -> (B, latent_dim)."""
        inside = (grids != PAD).float()[:, None]  # (B, 1, S, S)
        h = self.convs(self.embed(grids).permute(0, 3, 1, 2)) * inside
        count = inside.sum((2, 3)).clamp_min(1)
        mean = h.sum((2, 3)) / count
        peak = (h - (1 - inside) * 1e4).amax((2, 3))
        size = torch.stack([(inside.amax(3)).sum((1, 2)), (inside.amax(2)).sum((1, 2))], 1) / 30.0  # ARC grids are at most 30x30
        return self.out(torch.cat([mean, peak, size], 1))


class Sender(nn.Module):
    """Emits ``max_length`` symbols from ``vocab_size``, one head per position reading the latent.

    Positions are predicted jointly from the latent rather than by a recurrent cell fed its own
    samples: with a GRU the second symbol had to be learnt through the first one's Gumbel noise
    and the language collapsed to a few dozen messages (README, "Design")."""

    def __init__(self, latent_dim: int, hidden_dim: int, vocab_size: int, max_length: int):
        super().__init__()
        self.vocab_size, self.max_length = vocab_size, max_length
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, vocab_size * max_length))

    def logits(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent).view(-1, self.max_length, self.vocab_size)

    def forward(self, latent: torch.Tensor, temperature: float, hard: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(message (B, L, V) one-hot with straight-through Gumbel gradients in training, argmax in eval; logits)."""
        logits = self.logits(latent)
        if self.training:
            return F.gumbel_softmax(logits, tau=temperature, hard=hard), logits
        return F.one_hot(logits.argmax(-1), self.vocab_size).to(logits.dtype), logits

    def sample(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """REINFORCE: (one-hot message without gradient, log-probability (B,), entropy (B,))."""
        dist = torch.distributions.Categorical(logits=self.logits(latent))
        ids = dist.sample()
        return F.one_hot(ids, self.vocab_size).float(), dist.log_prob(ids).sum(1), dist.entropy().sum(1)

    @torch.no_grad()
    def greedy(self, latent: torch.Tensor) -> torch.Tensor:
        """Symbol ids (B, L) by argmax, whatever the module's mode (displays, language analysis)."""
        return self.logits(latent).argmax(-1)


class Receiver(nn.Module):
    """Reads a message (B, L, V) into a ``hidden_dim`` vector: position-aware symbol embeddings and an MLP."""

    def __init__(self, vocab_size: int, hidden_dim: int, max_length: int):
        super().__init__()
        self.embed = nn.Linear(vocab_size * max_length, hidden_dim)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(hidden_dim, hidden_dim))

    def forward(self, message: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(message.flatten(1)))


class ARCAutoencoder(nn.Module):
    def __init__(
        self,
        encoder: ARCEncoder,
        vocab_size: int = 25,
        max_length: int = 2,
        num_colors: int = 10,
        embedding_dim: int = 16,
        hidden_dim: int = 64,
        max_grid_size: int = 30,
        bottleneck_type: str = "communication",
        task_type: str = "selection",
        num_conv_layers: int = 3,
        num_classes: int | None = None,
    ):
        super().__init__()
        if bottleneck_type not in ("communication", "autoencoder"):
            raise ValueError(f"bottleneck_type must be communication or autoencoder, not {bottleneck_type!r}")
        if task_type not in ("selection", "reconstruction", "puzzle_classification"):
            raise ValueError(f"task_type must be selection, reconstruction or puzzle_classification, not {task_type!r}")
        self.encoder = encoder
        self.vocab_size, self.max_length, self.num_colors, self.hidden_dim = vocab_size, max_length, num_colors, hidden_dim
        self.max_grid_size, self.bottleneck_type, self.task_type, self.num_classes = max_grid_size, bottleneck_type, task_type, num_classes
        latent = encoder.latent_dim
        if bottleneck_type == "communication":
            self.sender = Sender(latent, hidden_dim, vocab_size, max_length)
            self.receiver = Receiver(vocab_size, hidden_dim, max_length)
        else:
            self.channel = nn.Linear(latent, hidden_dim)
        if task_type == "selection":
            self.candidate = nn.Linear(latent, hidden_dim)
        elif task_type == "reconstruction":
            s = max_grid_size
            self.size_head = nn.Linear(hidden_dim, 2 * s)
            self.cells = nn.Sequential(nn.Linear(hidden_dim, 4 * hidden_dim), nn.GELU(), nn.Linear(4 * hidden_dim, s * s * num_colors))
        else:
            if not num_classes:
                raise ValueError("puzzle_classification needs num_classes")
            self.classifier = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, num_classes))

    def communicate(self, grids: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(receiver vector (B, hidden), message (B, L, V) or None)."""
        latent = self.encoder(grids)
        if self.bottleneck_type == "communication":
            message, _ = self.sender(latent, temperature)
            return self.receiver(message), message
        return self.channel(latent), None

    def listen(self, message: torch.Tensor) -> torch.Tensor:
        return self.receiver(message)

    def select(self, vector: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores (B, K) of candidates (B, K, S, S) for each receiver vector."""
        b, k = candidates.shape[:2]
        encoded = self.candidate(self.encoder(candidates.reshape(b * k, *candidates.shape[2:]))).view(b, k, -1)
        return torch.einsum("bh,bkh->bk", vector, encoded)

    def reconstruct(self, vector: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.max_grid_size
        size = self.size_head(vector).view(-1, 2, s)
        cells = self.cells(vector).view(-1, s, s, self.num_colors)
        return size[:, 0], size[:, 1], cells

    def classify(self, vector: torch.Tensor) -> torch.Tensor:
        return self.classifier(vector)
