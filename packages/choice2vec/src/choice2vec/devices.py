"""How many devices a run trains on, and the mesh that spreads each batch over them.

The batch is split by rows over a ``jax.sharding.Mesh`` with one ``data`` axis; parameters and
optimiser state are replicated and XLA reduces the gradients. The batch is sampled on the device
with the partitionable threefry (pinned here and recorded in each checkpoint), so the sampled
data do not depend on the device count: another count continues the same data order.
"""

from __future__ import annotations

from typing import Any

from trainer_core import UsageError


def pin_random_bits() -> dict[str, Any]:
    """Pin the random-bit generation the sampled batches rely on; returns what to record."""
    import jax

    jax.config.update("jax_threefry_partitionable", True)
    return {"jax_threefry_partitionable": True}


def choose_device_count(requested: int | None, batch_size: int, available: int, platform: str = "cpu") -> int:
    """``requested`` checked against the devices and the batch, or (None) the most devices that split
    the batch evenly."""
    if requested is None:
        return max(d for d in range(1, available + 1) if batch_size % d == 0)
    if requested > available:
        more = " (on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N gives N devices)" if platform == "cpu" else ""
        raise UsageError(f"--devices {requested}: this process sees {available} {platform} device(s){more}")
    if batch_size % requested:
        raise UsageError(f"--devices {requested} does not split training.batch_size {batch_size} evenly; choose a divisor of {batch_size}")
    return requested


def start_processes(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """``jax.distributed.initialize`` for a job of several processes (nothing for one)."""
    if not num_processes or num_processes <= 1:
        return
    if coordinator is None or process_id is None:
        raise UsageError("several processes need --coordinator HOST:PORT and --process-id I as well as --num-processes P")
    if not 0 <= process_id < num_processes:
        raise UsageError(f"--process-id {process_id} is outside 0..{num_processes - 1}")
    import jax

    jax.distributed.initialize(coordinator, num_processes, process_id)


def data_mesh(count: int):
    """The mesh with a ``data`` axis: the first ``count`` devices of one process, or every device of
    every process in a job of several (None for one device in one process)."""
    import jax
    import numpy as np
    from jax.sharding import Mesh

    if jax.process_count() > 1:
        return Mesh(np.array(jax.devices()), ("data",))
    if count <= 1:
        return None
    return Mesh(np.array(jax.devices()[:count]), ("data",))


def replicate(tree: Any, mesh) -> Any:
    """``tree`` copied to every device of ``mesh`` (unchanged without one). Across processes each
    process gives its own, identical copy (``make_array_from_process_local_data``)."""
    if mesh is None:
        return tree
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec

    everywhere = NamedSharding(mesh, PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(tree, everywhere)

    def put(value: Any) -> Any:
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):  # typed keys travel as their raw bits
            return jax.random.wrap_key_data(put(jax.random.key_data(value)), impl=jax.random.key_impl(value))
        return jax.make_array_from_process_local_data(everywhere, np.asarray(value))

    return jax.tree_util.tree_map(put, tree)


class CompileCounter:
    """How many XLA compilations happen inside ``with counter:`` blocks (jax.monitoring's event;
    a jitted function's own cache size also counts argument signatures that reuse one executable)."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self) -> None:
        import jax

        self.count, self._active = 0, False
        jax.monitoring.register_event_duration_secs_listener(self._heard)

    def _heard(self, event: str, duration: float, **kwargs: Any) -> None:
        if self._active and event == self.EVENT:
            self.count += 1

    def __enter__(self) -> "CompileCounter":
        self._active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self._active = False
