"""spinlock-vqvae's plugin for trainer-core: the checkpoint layouts it writes.

`spinlock train-vqvae` writes best_model.pt and last_model.pt (layout ``vqvae.training``),
`spinlock train-ano` writes ano_model.pt (``vqvae.ano``): single-file checkpoints with a sidecar
manifest.
"""

from __future__ import annotations

from spinlock_vqvae.layout import ANO_LAYOUT, LAYOUT
from trainer_core import hookimpl

PACKAGE = LAYOUT.package


@hookimpl
def register_checkpoint_layouts(register):
    register(LAYOUT)
    register(ANO_LAYOUT)


@hookimpl
def register_models(register):
    from trainer_core import ModelSpec

    def load(path):
        from spinlock_vqvae.encode import TrainedModel

        return TrainedModel(path).model

    register(ModelSpec(name=LAYOUT.model, package=PACKAGE, framework="torch", layouts=(LAYOUT.name,), load=load,
                       description="categorical hierarchical VQ-VAE (one 3-level residual quantiser per feature category)"))  # fmt: skip

    def load_ano(path):
        from spinlock_vqvae.ano import load_regressor

        return load_regressor(path)

    register(ModelSpec(name=ANO_LAYOUT.model, package=PACKAGE, framework="torch", layouts=(ANO_LAYOUT.name,), load=load_ano,
                       description="atomic neural operator: tokens (or raw features) to operator parameters, an MLP"))  # fmt: skip


@hookimpl
def register_config_schemas(register):
    from spinlock_vqvae.config import ANOConfig, VQVAEConfig
    from trainer_core import ConfigSchema

    register(ConfigSchema(name="vqvae.train", model=VQVAEConfig, description="spinlock train-vqvae (configs/vqvae/*.json, *.yaml)"))
    register(ConfigSchema(name="vqvae.ano", model=ANOConfig, description="spinlock train-ano (configs/vqvae/ano.yaml)"))
