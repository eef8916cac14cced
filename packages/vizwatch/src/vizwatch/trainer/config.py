"""Config of `vizwatch train` (torch-free, so the CLI starts fast)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from trainer_core import TrainerConfig


class VizwatchConfig(TrainerConfig):
    # pictures and where they go: no part of what is trained, so a resume may change them
    resume_free: ClassVar[tuple[str, ...]] = ("visualize_training", "viz_every", "viz_method", "viz_root", "viz_worker", "viz_on")
    dataset: Literal["xray", "digits"] = Field("xray", description="xray: built-in imbalanced X-ray sources; digits: scikit-learn's digits")
    classes: int = Field(4, ge=2, le=10, description="number of classes (xray: 2-4, digits: 2-10)")
    samples: int = Field(12000, ge=100, le=10_000_000, description="generated sources (xray only)")
    epochs: int = Field(150, ge=1, le=1_000_000)
    batch_size: int = Field(256, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(1e-4, ge=0)
    hidden_size: int = Field(128, ge=4, le=65_536)
    latent_size: int = Field(32, ge=2, le=65_536, description="size of the latent layer that vizwatch draws")
    dropout: float = Field(0.2, ge=0, lt=1)
    focal_gamma: float = Field(2.0, ge=0, le=100, description="focal loss gamma (0: cross-entropy)")
    oversample_target: float = Field(0.0, ge=0, le=1, description="grow each minority class to this fraction of the largest (0: off)")
    val_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    visualize_training: bool = False
    viz_every: int = Field(10, ge=1, le=1_000_000, description="snapshot every N epochs (besides epoch 1, the milestones and the last)")
    viz_method: Literal["tsne", "umap", "pca"] = "tsne"
    viz_root: str = "training_feature_visualizations"
    viz_worker: Literal["process", "thread"] = "process"
    viz_on: Literal["epoch", "checkpoint"] = Field("epoch", description="draw at each epoch end, or once each epoch's checkpoint is committed")
    keep_last: int = Field(2, ge=1, le=100_000)

    @model_validator(mode="after")
    def _classes_fit_dataset(self) -> VizwatchConfig:
        if self.dataset == "xray" and self.classes > 4:
            raise ValueError("the xray dataset has 4 classes (AGN, HM/LM, YSO, CV): use --classes 2 to 4, or --dataset digits")
        return self
