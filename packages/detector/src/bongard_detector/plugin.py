"""bongard-detector's plugin for trainer-core: the checkpoint layouts it writes and its models, so
that ``core plugins``, ``core list-checkpoints``, ``core show`` and ``trainer_core.load_model`` know them."""

from __future__ import annotations

from bongard_detector.layouts import CLASSIFIER_LAYOUT, DETECTOR_LAYOUT, PACKAGE
from trainer_core import hookimpl


@hookimpl
def register_checkpoint_layouts(register):
    register(DETECTOR_LAYOUT)
    register(CLASSIFIER_LAYOUT)


def _load_detector(path):
    """The FCOS detector of ``final`` or an ``epochs/epoch_NNN`` checkpoint, in eval mode."""
    from bongard_detector.training import TrainConfig, build_detector
    from trainer_core import TORCH_MODEL_FILE, load_checkpoint

    files = load_checkpoint(path, files=None).files
    config = TrainConfig(**files["config.json"])
    model = build_detector(config.professional, config.image_size, config.fpn_channels, config.head_convs)
    model.load_state_dict(files["model.pt"] if "model.pt" in files else files[TORCH_MODEL_FILE])
    return model.eval()


def _load_classifier(path):
    """The shape classifier of a ``classifier/step_NNNNN`` checkpoint, in eval mode."""
    from bongard_detector.shape_classifier import classifier_from_weights
    from bongard_detector.training import TrainConfig
    from trainer_core import TORCH_MODEL_FILE, load_checkpoint

    files = load_checkpoint(path, files=[TORCH_MODEL_FILE, "config.json"]).files
    return classifier_from_weights(files[TORCH_MODEL_FILE], TrainConfig(**files["config.json"]).professional)


@hookimpl
def register_models(register):
    from trainer_core import ModelSpec

    register(ModelSpec(name=DETECTOR_LAYOUT.model, package=PACKAGE, framework="torch", layouts=(DETECTOR_LAYOUT.name,),
                       load=_load_detector, description="FCOS on a ResNet FPN (torchvision)"))  # fmt: skip
    register(ModelSpec(name=CLASSIFIER_LAYOUT.model, package=PACKAGE, framework="torch", layouts=(CLASSIFIER_LAYOUT.name,),
                       load=_load_classifier, description="ResNet classifier of shape crops"))  # fmt: skip


@hookimpl
def register_config_schemas(register):
    from bongard_detector.training import TrainConfig
    from trainer_core import ConfigSchema

    register(ConfigSchema(name="detector.train", model=TrainConfig,
                          description="detector training settings (what models/<profile>/final/config.json records)"))  # fmt: skip
