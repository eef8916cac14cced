"""spinlock-vqvae's plugin for trainer-core: the checkpoint layouts it writes.

`spinlock train-vqvae` writes this layout: best_model.pt and last_model.pt, each a single-file
checkpoint with a sidecar manifest.
"""

from __future__ import annotations

from spinlock_vqvae.layout import LAYOUT
from trainer_core import hookimpl

PACKAGE = LAYOUT.package


@hookimpl
def register_checkpoint_layouts(register):
    register(LAYOUT)


@hookimpl
def register_models(register):
    from trainer_core import ModelSpec

    def load(path):
        from spinlock_vqvae.encode import TrainedModel

        return TrainedModel(path).model

    register(ModelSpec(name=LAYOUT.model, package=PACKAGE, framework="torch", layouts=(LAYOUT.name,), load=load,
                       description="categorical hierarchical VQ-VAE (one 3-level residual quantiser per feature category)"))  # fmt: skip


@hookimpl
def register_config_schemas(register):
    from spinlock_vqvae.config import VQVAEConfig
    from trainer_core import ConfigSchema

    register(ConfigSchema(name="vqvae.train", model=VQVAEConfig, description="spinlock train-vqvae (configs/vqvae/*.json, *.yaml)"))
