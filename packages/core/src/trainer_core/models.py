"""Registered models: which package's model loads a checkpoint, and ``load_model(path)``.

A package registers a :class:`ModelSpec` through ``register_models``: its name, framework, the
layouts whose checkpoints it loads, and ``load(path)`` returning the model with its weights
(a ``torch.nn.Module`` in eval mode, or a bound flax module). Core finds the right one from the
checkpoint's manifest alone, so ``trainer_core.load_model`` works on any package's checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainer_core.errors import UsageError


@dataclass(frozen=True)
class ModelSpec:
    """One model a package can rebuild from its checkpoints.

    ``load(path)`` gets the checkpoint path (verified by core first) and returns the model with
    its weights. ``layouts`` are the checkpoint layouts it reads. ``framework`` is ``torch`` or
    ``jax``.
    """

    name: str
    package: str
    framework: str
    layouts: tuple[str, ...]
    load: Callable[[str], Any] = field(compare=False)
    description: str = ""


def parameter_count(model: Any) -> int:
    """Number of parameters of a torch module, or of a pytree of arrays (flax params)."""
    if hasattr(model, "parameters") and callable(model.parameters):
        return int(sum(p.numel() for p in model.parameters()))
    import numpy as np

    total, stack = 0, [model]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif hasattr(node, "shape"):
            total += int(np.prod(node.shape))
    return total


def model_for(path: str | os.PathLike, registry: Any) -> ModelSpec:
    """The registered model that loads the checkpoint at ``path`` (from its manifest)."""
    from trainer_core.checkpoint.discovery import describe_path

    info = describe_path(path, registry.layouts)
    if info.status not in ("ok",):
        raise UsageError(f"{path} is {info.status}: {'; '.join(info.problems) or 'not loadable'}")
    for spec in registry.models.values():
        if info.layout in spec.layouts:
            return spec
    raise UsageError(f"no installed package registers a model for layout {info.layout!r} ({path}); install {info.package}")


def load_model(path: str | os.PathLike, *, pm: Any = None) -> Any:
    """The model stored in any package's checkpoint at ``path``, with its weights.

    Raises :class:`~trainer_core.errors.UsageError` (one line) when the path is no checkpoint,
    is corrupt, or no installed package registers a model for its layout.
    """
    from trainer_core.plugins import collect_registry, get_plugin_manager

    registry = collect_registry(pm if pm is not None else get_plugin_manager(warn=False))
    spec = model_for(path, registry)
    return spec.load(os.path.abspath(path))
