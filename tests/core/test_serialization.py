"""Every checkpoint file format round-trips, and loading never unpickles code."""

from __future__ import annotations

import numpy as np
import pytest

from trainer_core.checkpoint.serialization import bytes_of, load_file
from trainer_core.errors import UnsafeCheckpointError


def _write(tmp_path, name, value):
    path = tmp_path / name
    path.write_bytes(bytes_of(name, value))
    return path


def test_torch_formats_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"w": torch.randn(3, 4), "b": torch.arange(3)}
    loaded = load_file(_write(tmp_path, "m.safetensors", state))
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    nested = {
        "optimizer": {"state": {0: {"momentum": torch.ones(2)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        "step": 5,
        "name": "x",
    }
    back = load_file(_write(tmp_path, "s.pt", nested))
    assert back["step"] == 5 and torch.equal(back["optimizer"]["state"][0]["momentum"], torch.ones(2))


def test_jax_pytree_round_trips_through_flax_msgpack(tmp_path):
    jnp = pytest.importorskip("jax.numpy")
    tree = {"params": {"dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}}, "step": 4}
    back = load_file(_write(tmp_path, "state.msgpack", tree))
    assert np.array_equal(back["params"]["dense"]["kernel"], np.ones((2, 3))) and back["step"] == 4


def test_numpy_json_yaml_round_trip(tmp_path):
    arrays = load_file(_write(tmp_path, "a.npz", {"x": np.arange(5)}))
    assert np.array_equal(arrays["x"], np.arange(5))
    assert load_file(_write(tmp_path, "c.json", {"a": [1, 2]})) == {"a": [1, 2]}
    assert load_file(_write(tmp_path, "c.yaml", {"a": {"b": 1.5}})) == {"a": {"b": 1.5}}


def test_npz_with_object_arrays_is_refused(tmp_path):
    path = tmp_path / "o.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UnsafeCheckpointError, match="pickled"):
        load_file(path)
