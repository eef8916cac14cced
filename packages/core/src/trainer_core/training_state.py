"""Full training state for bit-identical resume: RNGs, model, optimizer, scheduler, position.

Everything is stored as tensors and plain values so that it reads back with
``torch.load(weights_only=True)``. torch is imported inside functions only.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import numpy as np

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"


def capture_rng_state(jax_key: Any = None) -> dict[str, Any]:
    """Python, numpy (global), torch CPU and CUDA generators, plus a JAX key if given.

    torch's generators are included when the process has imported torch; without torch the
    result is plain JSON (a JAX trainer can save it as ``rng_state.json``).
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
    }
    if "torch" in sys.modules:
        import torch

        state["torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
    if jax_key is not None:
        import jax

        state["jax_key"] = np.asarray(jax.random.key_data(jax_key) if _is_typed_key(jax_key) else jax_key).tolist()
    return state


def _is_typed_key(key: Any) -> bool:
    import jax

    return hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def restore_rng_state(state: dict[str, Any]) -> Any:
    """Restore every generator captured by :func:`capture_rng_state`; returns the JAX key or None."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    if "jax_key" in state:
        return np.asarray(state["jax_key"], dtype=np.uint32)
    return None


def training_state(
    model: Any, optimizer: Any = None, scheduler: Any = None, *, position: dict[str, Any] | None = None, jax_key: Any = None
) -> dict[str, Any]:
    """The files of a full training checkpoint: weights plus everything needed to resume."""
    trainer_state = {
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": capture_rng_state(jax_key),
        "position": dict(position or {}),
    }
    return {MODEL_FILE: model.state_dict(), STATE_FILE: trainer_state}


def restore_training_state(files: dict[str, Any], model: Any, optimizer: Any = None, scheduler: Any = None) -> dict[str, Any]:
    """Load weights, optimizer, scheduler and RNGs from loaded checkpoint files; returns position."""
    model.load_state_dict(files[MODEL_FILE])
    state = files[STATE_FILE]
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    return dict(state.get("position") or {})


def epoch_permutation(num_items: int, epoch: int, seed: int) -> Any:
    """The data order of ``epoch``: a pure function of (seed, epoch), so resume needs no state."""
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=generator)
