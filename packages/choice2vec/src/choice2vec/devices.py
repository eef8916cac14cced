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


def data_mesh(count: int):
    """The mesh of the first ``count`` devices with a ``data`` axis (None for one device)."""
    if count <= 1:
        return None
    import jax
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.array(jax.devices()[:count]), ("data",))


def replicate(tree: Any, mesh) -> Any:
    """``tree`` copied to every device of ``mesh`` (unchanged without one)."""
    if mesh is None:
        return tree
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


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
