"""Config schema of the example trainer (kept free of torch so the CLI starts fast)."""

from __future__ import annotations

from pydantic import Field

from trainer_core.config import TrainerConfig


class ExampleConfig(TrainerConfig):
    epochs: int = Field(20, ge=1, le=1_000_000, description="passes over the training set")
    batch_size: int = Field(64, ge=1, le=1_000_000)
    learning_rate: float = Field(0.1, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_step_epochs: int = Field(8, ge=1, le=1_000_000, description="decay the learning rate by lr_gamma every N epochs")
    lr_gamma: float = Field(0.5, gt=0, le=1)
    hidden_size: int = Field(128, ge=1, le=65_536)
    dropout: float = Field(0.05, ge=0, lt=1)
    samples: int = Field(3000, ge=30, le=10_000_000, description="generated points (3-arm spirals)")
    classes: int = Field(3, ge=2)
    noise: float = Field(0.15, ge=0)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    checkpoint_every_steps: int = Field(0, ge=0, le=100_000_000, description="also checkpoint mid-epoch every N steps (0: epoch ends only)")
    keep_last: int = Field(3, ge=1, le=100_000)
    keep_best: int = Field(1, ge=0, le=100_000)
    async_save: bool = True
    log_every: int = Field(0, ge=0, le=100_000_000, description="print a train line every N steps (0: epoch summaries only)")
