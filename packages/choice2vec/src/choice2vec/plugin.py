"""choice2vec's trainer-core plugin: its checkpoint layout and config schema."""

from __future__ import annotations

from trainer_core.hookspecs import hookimpl
from trainer_core.layouts import CheckpointLayout

PACKAGE = "choice2vec"


@hookimpl
def register_checkpoint_layouts(register):
    register(
        CheckpointLayout(
            name="choice2vec.checkpoint",
            package=PACKAGE,
            kind="training",
            headline_metrics=("best_accuracy", "best_algorithm", "baseline_oracle", "total_loss"),
            description="training_checkpoints_<time>/checkpoint_epoch_XXXXXX/: flax msgpack weights and state, clustering results, 4-row figure",
        )
    )


@hookimpl
def register_config_schemas(register):
    from choice2vec.config import Choice2VecConfig
    from trainer_core.config import ConfigSchema

    register(ConfigSchema(name="choice2vec.train", model=Choice2VecConfig, description="c2v train: model, training and data sections"))
