"""arc-comm's plugin for trainer-core: its checkpoint layouts, models and config schema."""

from __future__ import annotations

from arc_comm.layouts import ENCODER_LAYOUT, PACKAGE, SYSTEM_LAYOUT
from trainer_core import hookimpl


@hookimpl
def register_checkpoint_layouts(register):
    register(SYSTEM_LAYOUT)
    register(ENCODER_LAYOUT)


def _load_system(path):
    """The communication system of a ``<name>.pth`` checkpoint, with its weights, in eval mode."""
    from arc_comm.config import ArcConfig
    from arc_comm.session import build_model
    from trainer_core import load_checkpoint

    (payload,) = load_checkpoint(path).files.values()
    weights = payload["model_state_dict"]
    classes = weights["classifier.2.weight"].shape[0] if "classifier.2.weight" in weights else None
    model = build_model(ArcConfig(**payload["config"]), classes)
    model.load_state_dict(weights)
    return model.eval()


def _load_encoder(path):
    """The grid encoder of ``pretrained_encoder_<task>.pth``, with its weights, in eval mode."""
    from arc_comm.config import ArcConfig
    from arc_comm.session import ENCODER_FIELDS, build_encoder
    from trainer_core import load_checkpoint

    (payload,) = load_checkpoint(path).files.values()
    encoder = build_encoder(ArcConfig(**{k: payload[k] for k in ENCODER_FIELDS}))
    encoder.load_state_dict(payload["encoder_state_dict"])
    return encoder.eval()


@hookimpl
def register_models(register):
    from trainer_core import ModelSpec

    register(ModelSpec(name=SYSTEM_LAYOUT.model, package=PACKAGE, framework="torch", layouts=(SYSTEM_LAYOUT.name,), load=_load_system,
                       description="grid encoder + sender/receiver (or autoencoder bottleneck) + task heads"))  # fmt: skip
    register(ModelSpec(name=ENCODER_LAYOUT.model, package=PACKAGE, framework="torch", layouts=(ENCODER_LAYOUT.name,), load=_load_encoder,
                       description="pretrained convolutional grid encoder"))  # fmt: skip


@hookimpl
def register_config_schemas(register):
    from arc_comm.config import ArcConfig
    from trainer_core import ConfigSchema

    register(ConfigSchema(name="arc.train", model=ArcConfig, description="arc train / arc-serve: task, model, training, data"))
