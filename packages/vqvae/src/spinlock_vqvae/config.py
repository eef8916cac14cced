"""Config of `spinlock train-vqvae`: the seed's keys, typed, with their defaults (torch-free)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from trainer_core import TrainerConfig


class VQVAEConfig(TrainerConfig):
    resume_free: ClassVar[tuple[str, ...]] = ("input", "output_dir")  # where files are, not what was trained
    input: str = Field("datasets/test_4k.h5", description="HDF5 dataset (see the README for its layout)")
    output_dir: str = Field("checkpoints/vqvae/run", description="where best_model.pt and the rest go")
    # model
    embedding_dim: int = Field(126, ge=2, le=8192, description="latent size shared by every category")
    compression_ratios: str = Field("0.5:1:1.5", description="relative codebook sizes of the three levels")
    max_codebook_size: int = Field(512, ge=8, le=65_536)
    hidden_size: int = Field(128, ge=8, le=65_536)
    # training
    epochs: int = Field(410, ge=1, le=1_000_000)
    batch_size: int = Field(1024, ge=2, le=1_000_000)
    learning_rate: float = Field(0.0007, gt=0, le=10)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    val_every_n_epochs: int = Field(1, ge=1, le=1_000_000)
    seed: int = 0
    use_torch_compile: bool = Field(False, description="torch.compile the model (helps on GPU; off by default on CPU)")
    # losses
    commitment_cost: float = Field(0.5, ge=0)
    orthogonality_weight: float = Field(0.1, ge=0)
    orthogonality_target: float = Field(0.25, ge=0, le=1)
    informativeness_weight: float = Field(0.1, ge=0)
    topo_weight: float = Field(0.45, ge=0)
    topo_samples: int = Field(1024, ge=2, le=1_000_000)
    # categories
    category_assignment: Literal["auto"] = "auto"
    num_categories_auto: int | None = Field(None, ge=1, le=1024)
    max_clusters: int = Field(50, ge=2, le=1024)
    # codebooks
    dead_code_reset_interval: int = Field(10000, ge=0, description="steps between dead-code resets (0: never)")
    dead_code_threshold: float = Field(10.0, ge=0, le=100, description="a code below this % of the mean usage is dead")
    ema_decay: float = Field(0.995, ge=0, lt=1)
    # checkpoint metric and early stopping
    checkpoint_use_composite: bool = True
    checkpoint_loss_weight: float = 1.0
    checkpoint_topo_weight: float = 0.5
    checkpoint_quality_weight: float = 0.5
    early_stopping_patience: int = Field(250, ge=1, le=1_000_000)
    early_stopping_min_delta: float = Field(0.001, ge=0)

    @field_validator("compression_ratios")
    @classmethod
    def _three_ratios(cls, value: str) -> str:
        parts = value.split(":")
        try:
            ok = len(parts) == 3 and all(float(p) > 0 for p in parts)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("use three positive numbers separated by colons, like '0.5:1:1.5'")
        return value
