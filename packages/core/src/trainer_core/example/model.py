"""The example model, and how to rebuild it from one of its checkpoints. Imports torch."""

from __future__ import annotations

import torch
from torch import nn

from trainer_core.checkpoint import load_checkpoint
from trainer_core.example.config import ExampleConfig
from trainer_core.training_state import MODEL_FILE


class SpiralNet(nn.Module):
    """Two hidden layers; ``body`` gives the latent that visualization plugins draw."""

    def __init__(self, hidden: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_model(config: ExampleConfig) -> SpiralNet:
    return SpiralNet(config.hidden_size, config.classes, config.dropout)


def load_trained(path: str) -> SpiralNet:
    """The model of a ``core.example`` checkpoint with its weights, in eval mode."""
    loaded = load_checkpoint(path, files=[MODEL_FILE, "config.json"])
    model = build_model(ExampleConfig(**loaded["config.json"]))
    model.load_state_dict(loaded[MODEL_FILE])
    return model.eval()
