"""Core's JAX training-state format: flax msgpack files, no pickle.

| file | contents |
|---|---|
| ``model_weights.msgpack`` | the parameters pytree |
| ``training_state.msgpack`` | optimiser state, the JAX PRNG key's data, python/numpy RNGs, position |

A JAX loop is functional: the trainer hands the current pytrees to :meth:`JaxState.update`
before a save, and reads :attr:`params`, :attr:`opt_state` and :attr:`key` back after a resume
(restored into the structure of the templates it was built with).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainer_core.training_state import capture_rng_state, restore_rng_state

PARAMS_FILE = "model_weights.msgpack"
STATE_FILE = "training_state.msgpack"


class JaxState:
    """The state adapter of JAX/flax/optax trainers."""

    framework = "jax"

    def __init__(self, params: Any, opt_state: Any = None, key: Any = None) -> None:
        self.params, self.opt_state, self.key = params, opt_state, key

    def update(self, *, params: Any, opt_state: Any = None, key: Any = None) -> None:
        """The current pytrees (call before each save)."""
        self.params, self.opt_state, self.key = params, opt_state, key

    def files(self, position: dict[str, Any], *, single_file: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        import jax

        if single_file is not None:
            raise ValueError("JAX training states are directory checkpoints (model_weights.msgpack + training_state.msgpack)")
        key = None if self.key is None else np.asarray(jax.random.key_data(self.key) if _typed(self.key) else self.key)
        state = {
            "opt_state": jax.device_get(self.opt_state),
            "key": key,
            "rng": _msgpack_safe(capture_rng_state()),
            "position": dict(position),
        }
        return {PARAMS_FILE: jax.device_get(self.params), STATE_FILE: state}

    def restore(self, files: dict[str, Any]) -> dict[str, Any]:
        import jax
        from flax import serialization

        saved = files[STATE_FILE]
        self.params = serialization.from_state_dict(self.params, files[PARAMS_FILE])
        if self.opt_state is not None:
            self.opt_state = serialization.from_state_dict(self.opt_state, saved["opt_state"])
        if saved.get("key") is not None:
            data = np.asarray(saved["key"], dtype=np.uint32)
            self.key = jax.random.wrap_key_data(data) if self.key is None or _typed(self.key) else data
        restore_rng_state(_from_msgpack(saved["rng"]))
        return {k: _plain(v) for k, v in (saved.get("position") or {}).items()}

    def parameter_count(self) -> int:
        from trainer_core.models import parameter_count

        return parameter_count(self.params)


def _typed(key: Any) -> bool:
    import jax

    return hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def _msgpack_safe(rng: dict[str, Any]) -> dict[str, Any]:
    """flax msgpack keeps dicts, lists and arrays; store the RNG lists as arrays, None as absent."""
    py, n = rng["python"], rng["numpy"]
    out = {
        "python": {"version": py["version"], "internal": np.asarray(py["internal"], dtype=np.uint64)},
        "numpy": {"kind": n["kind"], "keys": np.asarray(n["keys"], dtype=np.uint32), "pos": n["pos"], "has_gauss": n["has_gauss"], "cached": n["cached"]},
    }
    if py["gauss"] is not None:
        out["python"]["gauss"] = py["gauss"]
    return out


def _from_msgpack(rng: dict[str, Any]) -> dict[str, Any]:
    py, n = rng["python"], rng["numpy"]
    return {
        "python": {"version": int(py["version"]), "internal": [int(v) for v in np.asarray(py["internal"])], "gauss": py.get("gauss")},
        "numpy": {"kind": str(n["kind"]), "keys": np.asarray(n["keys"]).tolist(), "pos": int(n["pos"]), "has_gauss": int(n["has_gauss"]), "cached": float(n["cached"])},
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value

# the names under which trainer_core exports them
JAX_PARAMS_FILE, JAX_STATE_FILE = PARAMS_FILE, STATE_FILE
