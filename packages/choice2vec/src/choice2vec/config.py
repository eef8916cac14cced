"""`c2v train` configuration: model, training and data sections (pydantic; unknown keys are errors).

Epochs are optimisation steps on a batch of ``batch_size`` windows of ``window`` consecutive
trials (the seed called each step an epoch; its 150,000 are the default here too). Everything
about the run is in the seed.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainer_core import TrainerConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    d_model: int = Field(128, ge=8, le=8192, description="transformer width")
    repr_dim: int = Field(256, ge=2, le=8192, description="representation size per trial")
    layers: int = Field(2, ge=1, le=64)
    heads: int = Field(4, ge=1, le=64)
    ff_dim: int = Field(256, ge=8, le=65_536)
    dropout: float = Field(0.1, ge=0, lt=1)
    window: int = Field(128, ge=8, le=100_000, description="trials per window (positional embeddings)")
    groups: int = Field(2, ge=1, le=64, description="quantiser groups")
    codes: int = Field(32, ge=2, le=65_536, description="codes per quantiser group")


class TrainingConfig(_Section):
    epochs: int = Field(150_000, ge=1, le=100_000_000)
    batch_size: int = Field(16, ge=1, le=100_000)
    learning_rate: float = Field(1e-3, gt=0, le=10)
    warmup_epochs: int = Field(500, ge=0, le=100_000_000)
    final_lr_fraction: float = Field(0.05, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    mask_prob: float = Field(0.3, gt=0, lt=1, description="probability that a trial starts a masked span")
    mask_span: int = Field(1, ge=1, le=10_000)
    distractors: int = Field(100, ge=1, le=100_000, description="contrastive distractors per masked trial, drawn from the whole batch")
    kappa: float = Field(0.1, gt=0, description="contrastive temperature")
    contrastive_weight: float = Field(0.1, ge=0)
    diversity_weight: float = Field(0.1, ge=0)
    max_temperature: float = Field(2.0, gt=0)
    min_temperature: float = Field(0.5, gt=0)
    temperature_decay: float = Field(0.9995, gt=0, le=1)
    checkpoint_every: int = Field(10_000, ge=1, le=100_000_000)
    log_every: int = Field(1_000, ge=1, le=1_000_000)
    seed: int = 0


class DataConfig(_Section):
    source: str = Field("simulated", description="'simulated' or a path to a CSV/HDF5 trials file")
    participants: int = Field(48, ge=2, le=100_000, description="simulated participants")
    trials_per_participant: int = Field(400, ge=16, le=1_000_000)
    task_seed: int = 0
    held_out_fraction: float = Field(0.25, gt=0, lt=1, description="participants kept for the clustering analysis")
    split_seed: int = 0
    cluster_trials: int = Field(3000, ge=100, le=10_000_000, description="held-out trials clustered at each checkpoint (evenly spaced)")
    representation_passes: int = Field(
        8, ge=1, description="masked passes per window when extracting representations (every N-th trial masked per pass)"
    )


Algorithm = Literal[
    "kmeans", "minibatch_kmeans", "gaussian_mixture", "bayesian_gaussian_mixture", "agglomerative", "spectral", "birch", "hdbscan"
]


class AnalysisConfig(_Section):
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: list(get_args(Algorithm)),
        min_length=1,
        description="clustering algorithms run at each checkpoint (default: all 8; the seed's 'use fewer algorithms' speeds it up)",
    )

    @field_validator("algorithms")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each algorithm at most once")
        return value


class Choice2VecConfig(TrainerConfig):
    resume_free: ClassVar[tuple[str, ...]] = ("data.source", "analysis.algorithms")  # a path, and what is analysed, not trained
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    data: DataConfig = DataConfig()
    analysis: AnalysisConfig = AnalysisConfig()
