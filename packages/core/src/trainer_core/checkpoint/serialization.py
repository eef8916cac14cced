"""Safe serialisation of checkpoint files, chosen by file suffix.

| suffix                | written with                         | read with                               |
|-----------------------|--------------------------------------|-----------------------------------------|
| .safetensors          | safetensors (flat dict of tensors)   | safetensors                             |
| .pt / .pth            | torch.save of tensors and primitives | torch.load(weights_only=True)           |
| .msgpack              | flax.serialization (JAX pytrees)     | flax msgpack_restore                    |
| .npz                  | numpy.savez                          | numpy.load(allow_pickle=False)          |
| .json / .yaml / .yml  | json / yaml.safe_dump                | json / yaml.safe_load                   |
| anything else (bytes) | raw bytes                            | raw bytes                               |

Nothing here unpickles arbitrary objects. A legacy pickle (``.pkl``) is read only when the caller
passes ``trust_pickle=True`` explicitly, never as a fallback.

``snapshot(name, value)`` copies live state to host memory on the calling thread and returns a
writer that serialises it later (possibly on a background thread), so training can go on.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO

from trainer_core.errors import CheckpointError, UnsafeCheckpointError

Writer = Callable[[BinaryIO], None]
PICKLE_SUFFIXES = (".pkl", ".pickle")


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _is_jax_array(value: Any) -> bool:
    return type(value).__module__.startswith(("jax", "jaxlib"))


def host_copy(value: Any, staging: dict | None = None, key: tuple = ()) -> Any:
    """Deep copy of tensors/arrays inside dicts, lists and tuples into host memory.

    With a ``staging`` dict, buffers of the previous snapshot are reused when shape and dtype
    match (copy into memory already mapped: no allocation, no page faults). Only valid while the
    previous snapshot is no longer being written — the checkpoint manager guarantees that.
    """
    if _is_torch_tensor(value):
        source = value.detach()
        if staging is not None:
            buffer = staging.get(key)
            if buffer is None or buffer.shape != source.shape or buffer.dtype != source.dtype or not source.is_contiguous():
                buffer = staging[key] = source.to("cpu", copy=True)
            else:
                buffer.copy_(source)
            return buffer
        return source.to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: host_copy(v, staging, (*key, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [host_copy(v, staging, (*key, i)) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(host_copy(v, staging, (*key, i)) for i, v in enumerate(value))
    if _is_jax_array(value):
        import numpy as np

        return np.array(value, copy=True)
    if hasattr(value, "copy") and type(value).__module__ == "numpy":
        return value.copy()
    return value


def snapshot(name: str, value: Any, copy: bool = True, staging: dict | None = None) -> bytes | Writer:
    """Capture ``value`` now; return bytes or a writer to serialise it into file ``name``.

    With ``copy`` (for asynchronous saves) tensors and arrays are copied to host memory first, so
    training may change them while the writer runs; without it the writer reads them in place.
    """
    clone = (lambda v: host_copy(v, staging, (name,))) if copy else (lambda v: v)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    suffix = _suffix(name)
    if suffix == ".json":
        from trainer_core.checkpoint.atomic import dumps_json

        return dumps_json(value)
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_dump(value, sort_keys=False).encode()
    if suffix == ".safetensors":
        return _safetensors_writer(clone(dict(value)))
    if suffix in (".pt", ".pth"):
        obj = clone(value)

        def write_torch(f: BinaryIO) -> None:
            import torch

            torch.save(obj, f)

        return write_torch
    if suffix == ".msgpack":
        return _msgpack_writer(value)
    if suffix == ".npz":
        arrays = {k: clone(v) for k, v in dict(value).items()}

        def write_npz(f: BinaryIO) -> None:
            import numpy as np

            buffer = io.BytesIO()  # numpy's zip writer wants a readable, seekable file
            np.savez(buffer, **arrays)
            f.write(buffer.getbuffer())

        return write_npz
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"refusing to write {name}: pickle files are not a checkpoint format here; use .safetensors, .pt, .msgpack, .npz or .json"
        )
    raise CheckpointError(
        f"cannot serialise {type(value).__name__} into {name}: give bytes or use a known suffix (.safetensors, .pt, .msgpack, .npz, .json, .yaml)"
    )


def _safetensors_writer(tensors: dict[str, Any]) -> Writer:
    if tensors and all(_is_torch_tensor(t) for t in tensors.values()):

        def write(f: BinaryIO) -> None:
            from safetensors.torch import save

            f.write(save({k: t.contiguous() for k, t in tensors.items()}))

        return write

    def write_numpy(f: BinaryIO) -> None:
        import numpy as np
        from safetensors.numpy import save

        f.write(save({k: np.ascontiguousarray(v) for k, v in tensors.items()}))

    return write_numpy


def _msgpack_writer(tree: Any) -> Writer:
    import jax
    from flax import serialization

    host_tree = jax.device_get(serialization.to_state_dict(tree))
    host_tree = jax.tree_util.tree_map(lambda x: x.copy() if hasattr(x, "copy") else x, host_tree)

    def write(f: BinaryIO) -> None:
        f.write(serialization.msgpack_serialize(host_tree))

    return write


def load_file(path: str | os.PathLike, *, trust_pickle: bool = False, framework: str = "pt") -> Any:
    """Load one checkpoint file safely, by suffix. ``framework`` picks safetensors' tensor type.
    Bytes that do not decode (garbage that still matches its manifest) are one :class:`CheckpointError`."""
    path = os.fspath(path)
    try:
        return _load_by_suffix(path, trust_pickle, framework)
    except (CheckpointError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - every decoder raises its own types on garbage
        first = (str(exc).splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"{path} cannot be decoded as {_suffix(path) or 'its format'} ({type(exc).__name__}{': ' + first if first else ''}); "
            "it is damaged or not what its name says: resume from another checkpoint"
        ) from None


def _load_by_suffix(path: str, trust_pickle: bool, framework: str) -> Any:
    suffix = _suffix(path)
    if suffix == ".json":
        with open(path, "rb") as f:
            return json.load(f)
    if suffix in (".yaml", ".yml"):
        import yaml

        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    if suffix == ".safetensors":
        try:
            if framework == "numpy":
                from safetensors.numpy import load_file as load_np

                return load_np(path)
            from safetensors.torch import load_file as load_pt

            return load_pt(path)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"{path} is not a valid safetensors file ({exc}); run `core verify` on it") from None
    if suffix in (".pt", ".pth"):
        return _load_torch(path, trust_pickle)
    if suffix == ".msgpack":
        from flax import serialization

        with open(path, "rb") as f:
            return serialization.msgpack_restore(f.read())
    if suffix == ".npz":
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except ValueError as exc:
            if "allow_pickle" not in str(exc):
                raise CheckpointError(f"{path} cannot be read as .npz: {exc}") from None
            raise UnsafeCheckpointError(f"{path} holds pickled Python objects, which can run arbitrary code; refusing to load it") from None
    if suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise UnsafeCheckpointError(
                f"{path} is a pickle, which can run arbitrary code when loaded; "
                "convert it; only if you created it yourself, read it with an explicit trust option (--trust-pickle where a command offers it)"
            )
        return _unpickle_trusted(path, torch_format=False)
    with open(path, "rb") as f:
        return f.read()


def _unpickle_trusted(path: str, *, torch_format: bool) -> Any:
    """The one place that unpickles arbitrary objects: reached only with ``trust_pickle=True``,
    which the user must ask for explicitly (``--trust-pickle``); never a fallback."""
    if torch_format:
        import torch

        return torch.load(path, map_location="cpu", weights_only=False)
    with open(path, "rb") as f:
        return pickle.load(f)


def _looks_like_torch_or_pickle(path: str) -> bool:
    """A torch zip archive, or a pickle stream (protocol 2+ opens with 0x80): never executed here."""
    import zipfile

    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _load_torch(path: str, trust_pickle: bool) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _looks_like_torch_or_pickle(path):
            raise CheckpointError(f"{path} is not a torch file (garbage or damaged bytes); run `core verify`, or resume from another checkpoint") from None
        if trust_pickle:
            return _unpickle_trusted(path, torch_format=True)
        raise UnsafeCheckpointError(
            f"{path} holds objects other than tensors and plain values, and loading it could run "
            f"arbitrary code ({str(exc).splitlines()[0][:160]}); only if you created it yourself, read it with an explicit trust option (--trust-pickle where a command offers it)"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(
            f"{path} cannot be read as a torch file ({str(exc).splitlines()[0][:160]}); it may be truncated: run `core verify`"
        ) from None


def bytes_of(name: str, value: Any) -> bytes:
    """Serialise ``value`` for file ``name`` to bytes (handy in tests and benchmarks)."""
    data = snapshot(name, value)
    if isinstance(data, bytes):
        return data
    buf = io.BytesIO()
    data(buf)
    return buf.getvalue()
