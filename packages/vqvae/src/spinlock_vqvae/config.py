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
    max_category_features: int | None = Field(
        None, ge=1, le=1_000_000, description="split a discovered category wider than this into sub-categories (more tokens for wide ones)"
    )
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


class ANOConfig(TrainerConfig):
    """Config of `spinlock train-ano` (configs/vqvae/ano.yaml lists every key)."""

    resume_free: ClassVar[tuple[str, ...]] = ("tokens", "dataset", "output_dir", "vqvae_model")
    tokens: str = Field("tokens.h5", description="token file from `spinlock encode-to-tokens`")
    dataset: str = Field("datasets/test_4k.h5", description="the dataset the tokens encode (operator parameters, raw features)")
    output_dir: str = Field("checkpoints/ano/run", description="where ano_model.pt, ano_results.json and the baseline go")
    inputs: Literal["tokens", "features"] = Field("tokens", description="what the model reads (features: the reference model)")
    token_embedding: Literal["codebook", "learned"] = Field(
        "codebook", description="codebook: token tables start as the VQ-VAE's codebooks, summed per category; learned: from scratch"
    )
    vqvae_model: str | None = Field(None, description="the model that wrote the tokens [default: the tokens file's provenance]")
    freeze_codebooks: bool = Field(False, description="keep codebook-initialised token tables fixed")
    embedding_dim: int = Field(16, ge=1, le=4096, description="width of each learned token embedding (codebook: the model's latent size)")
    hidden_size: int = Field(256, ge=4, le=65_536)
    layers: int = Field(2, ge=1, le=16, description="hidden layers of the MLP")
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(60, ge=1, le=1_000_000)
    batch_size: int = Field(128, ge=2, le=1_000_000)
    learning_rate: float = Field(0.002, gt=0, le=10)
    weight_decay: float = Field(0.01, ge=0, le=10)
    test_fraction: float = Field(0.2, gt=0, lt=0.5, description="rows held out for the reported R²")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="rows that choose the best epoch (best_ano_model.pt)")
    eval_every_n_epochs: int = Field(5, ge=1, le=1_000_000)
    seed: int = 0
    baselines: bool = Field(True, description="also train the raw-feature model and fit ridge and the mean predictor")
