"""Model and loss: an MLP with a latent layer (what vizwatch draws) and multi-class focal loss."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Classifier(nn.Module):
    def __init__(self, features: int, classes: int, hidden: int, latent: int, dropout: float) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, latent),
            nn.ReLU(),
        )
        self.head = nn.Linear(latent, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Multi-class focal loss (Lin et al. 2017), mean over the batch: -(1 - p_t)^gamma log p_t.

    With gamma = 0 it is exactly cross-entropy.
    """
    log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    if gamma == 0:
        return -log_p.mean()
    return (-(1 - log_p.exp()).pow(gamma) * log_p).mean()


def load_trained(path: str) -> Classifier:
    """The classifier of a ``vizwatch.classifier`` checkpoint with its weights, in eval mode."""
    from trainer_core import load_checkpoint
    from vizwatch.trainer.config import VizwatchConfig

    loaded = load_checkpoint(path, files=["model.safetensors", "config.json"])
    config = VizwatchConfig(**loaded["config.json"])
    weights = loaded["model.safetensors"]  # input and class counts come from the weights: no dataset is read
    features = weights["encoder.0.weight"].shape[1]
    classes = weights["head.weight"].shape[0]
    model = Classifier(features, classes, config.hidden_size, config.latent_size, config.dropout)
    model.load_state_dict(weights)
    return model.eval()
