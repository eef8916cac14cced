"""choice2vec's trainer-core plugin: its checkpoint layout, model and config schema."""

from __future__ import annotations

from choice2vec.checkpoints import LAYOUT_SPEC, PACKAGE
from trainer_core import hookimpl


@hookimpl
def register_checkpoint_layouts(register):
    register(LAYOUT_SPEC)


@hookimpl
def register_models(register):
    from trainer_core import ModelSpec

    def load(path):
        """The flax module bound to the checkpoint's parameters: ``model(x, mask)`` runs it."""
        from choice2vec.checkpoints import load as load_c2v

        checkpoint = load_c2v(path, results=False)
        return checkpoint.model().bind(checkpoint.params)

    register(ModelSpec(name=LAYOUT_SPEC.model, package=PACKAGE, framework="jax", layouts=(LAYOUT_SPEC.name,), load=load,
                       description="wav2vec-style transformer over trial sequences (flax)"))  # fmt: skip


@hookimpl
def register_config_schemas(register):
    from choice2vec.config import Choice2VecConfig
    from trainer_core import ConfigSchema

    register(ConfigSchema(name="choice2vec.train", model=Choice2VecConfig, description="c2v train: model, training and data sections"))
