"""trainer-core's public API: everything a package author uses, importable from ``trainer_core``.

Plugins import only from here (a test enforces it). Names load on first use, so importing
``trainer_core`` stays light (no torch, no jax, no pydantic until asked for).

- Running a trainer: :class:`TrainingRun`, :class:`TorchState`, :class:`JaxState`,
  :class:`RetentionPolicy`, :func:`epoch_permutation`, :func:`seed_everything`,
  :func:`commit_checkpoint`; under torchrun ``run.world`` (a :class:`World`) and
  :class:`GlobalBatches`, the distributed sampler.
- Registering through the hooks: :data:`hookimpl`, :class:`CheckpointLayout`,
  :class:`CheckpointInfo`, :class:`ModelSpec`, :class:`ConfigSchema`, :class:`TrainerConfig`.
- Reading checkpoints: :func:`load_checkpoint`, :func:`load_model`, :func:`verify_checkpoint`,
  :func:`list_committed`, :func:`find_checkpoints`.
- Where a path lives: :func:`is_url` (an ``s3://``/``gs://`` root instead of a local
  folder), :func:`join_location`, :func:`location_exists`, :func:`location_name`.
- Configs and errors: :func:`load_config`, :func:`config_hash`, :class:`UsageError`,
  :class:`ConfigError`, :class:`CheckpointError`, :class:`CorruptCheckpointError`.
- Pipelines and pictures: :class:`StageCache`, :class:`VisualizationEvent`, :class:`SplitData`, :class:`CodebookData`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # running a trainer
    "TrainingRun": "trainer_core.training_run",
    "StateAdapter": "trainer_core.training_run",
    "commit_checkpoint": "trainer_core.training_run",
    "seed_everything": "trainer_core.training_run",
    "TorchState": "trainer_core.training_state",
    "epoch_permutation": "trainer_core.training_state",
    "capture_rng_state": "trainer_core.training_state",
    "restore_rng_state": "trainer_core.training_state",
    "JaxState": "trainer_core.jax_state",
    "JAX_PARAMS_FILE": "trainer_core.jax_state",
    "JAX_STATE_FILE": "trainer_core.jax_state",
    "TORCH_MODEL_FILE": "trainer_core.training_state",
    "TORCH_STATE_FILE": "trainer_core.training_state",
    "RetentionPolicy": "trainer_core.checkpoint.retention",
    "World": "trainer_core.distributed",
    "GlobalBatches": "trainer_core.distributed",
    "BatchShare": "trainer_core.distributed",
    "single_process_only": "trainer_core.distributed",
    "current_world": "trainer_core.distributed",
    "jax_world": "trainer_core.distributed",
    "sync_batchnorm": "trainer_core.torch_parallel",
    "uneven_share_warning": "trainer_core.distributed",
    "Run": "trainer_core.run",
    # registering through the hooks
    "hookimpl": "trainer_core.hookspecs",
    "CheckpointLayout": "trainer_core.layouts",
    "CheckpointInfo": "trainer_core.layouts",
    "ModelSpec": "trainer_core.models",
    "parameter_count": "trainer_core.models",
    "ConfigSchema": "trainer_core.config",
    "TrainerConfig": "trainer_core.config",
    # reading checkpoints
    "load_checkpoint": "trainer_core.checkpoint",
    "verify_checkpoint": "trainer_core.checkpoint",
    "verify_hashes": "trainer_core.checkpoint",
    "check_file_sizes": "trainer_core.checkpoint.manifest",
    "files_problem": "trainer_core.checkpoint.manifest",
    "list_committed": "trainer_core.checkpoint",
    "find_resume_point": "trainer_core.checkpoint",
    "resume_config_path": "trainer_core.checkpoint.loading",
    # object storage: a root may be a local path or an fsspec URL (s3://, gs://...)
    "is_url": "trainer_core.storage",
    "join_location": "trainer_core.storage",
    "location_exists": "trainer_core.storage",
    "location_name": "trainer_core.storage",
    "LoadedCheckpoint": "trainer_core.checkpoint",
    "load_model": "trainer_core.models",
    "find_checkpoints": "trainer_core.checkpoint.discovery",
    "get_plugin_manager": "trainer_core.plugins",
    "collect_registry": "trainer_core.plugins",
    # configs and errors
    "load_config": "trainer_core.config",
    "config_hash": "trainer_core.config",
    "write_resolved_config": "trainer_core.config",
    "UsageError": "trainer_core.errors",
    "TrainerCoreError": "trainer_core.errors",
    "ConfigError": "trainer_core.errors",
    "DivergedError": "trainer_core.errors",
    "CheckpointError": "trainer_core.errors",
    "CorruptCheckpointError": "trainer_core.errors",
    # files, pipelines, pictures
    "atomic_write_bytes": "trainer_core.checkpoint.atomic",
    "atomic_write_json": "trainer_core.checkpoint.atomic",
    "sha256_file": "trainer_core.checkpoint.atomic",
    "bytes_of": "trainer_core.checkpoint.serialization",
    "load_file": "trainer_core.checkpoint.serialization",
    "StageCache": "trainer_core.stages",
    "dir_output": "trainer_core.stages",
    "file_output": "trainer_core.stages",
    "json_count_output": "trainer_core.stages",
    "checkpoint_output": "trainer_core.stages",
    "validate_output": "trainer_core.stages",
    "VisualizationEvent": "trainer_core.visuals",
    "SplitData": "trainer_core.visuals",
    "CodebookData": "trainer_core.visuals",
    "save_figure": "trainer_core.plotting",
    "allocate_run_dir": "trainer_core.rundirs",
    "timestamped_run_dir": "trainer_core.rundirs",
    # command-line helpers shared by every package's CLI
    "TrainerGroup": "trainer_core.cli.support",
    "FiniteFloatRange": "trainer_core.cli.support",
    "describe_os_error": "trainer_core.cli.support",
    "echo_json": "trainer_core.cli.support",
    "format_value": "trainer_core.cli.support",
    "render_table": "trainer_core.cli.support",
    "human_size": "trainer_core.cli.support",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainer_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
