"""Data-parallel runs under ``torchrun``: who this process is, and how ranks agree on a save.

``torchrun --nproc_per_node=N <command>`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; :func:`current_world` reads them, initialises ``torch.distributed`` once (gloo on
CPU, NCCL on CUDA) and returns the :class:`World`. Without torchrun it is a world of one and
nothing is imported or started.

A multi-rank checkpoint commits through the c10d key-value store that torch.distributed already
runs (never a collective of the training group, so the background writer thread may use it): each
wait has a timeout, so a rank that died or never arrives turns into one clear error on every
other rank instead of a hang. See :func:`trainer_core.checkpoint.commit.commit_directory_ranked`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from trainer_core.errors import CheckpointError

DEFAULT_TIMEOUT_S = 300.0  # TRAINER_CORE_DIST_TIMEOUT overrides it (seconds)


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    store: Any = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes the replicated state, the manifest, metrics and run record."""
        return self.rank == 0

    @property
    def multi(self) -> bool:
        return self.size > 1

    def publish(self, key: str, value: str) -> None:
        self.store.set(key, value)

    def receive(self, key: str, what: str) -> str:
        """The value another rank publishes under ``key``, waiting at most ``timeout_s``."""
        try:
            self.store.wait([key], timedelta(seconds=self.timeout_s))
        except Exception as exc:  # noqa: BLE001 - the store raises its own (DistStoreError, RuntimeError) on a timeout
            raise CheckpointError(
                f"rank {self.rank}: {what} did not arrive within {self.timeout_s:g} s ({type(exc).__name__}); "
                "another rank died or is stuck: the previous checkpoint is intact, resume from it"
            ) from None
        return self.store.get(key).decode()


SINGLE = World()


def current_world() -> World:
    """The world of this process: from torchrun's environment, or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    timeout_s = float(os.environ.get("TRAINER_CORE_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(seconds=max(timeout_s, 60)))
    # the default group's key-value store (a PrefixStore over torchrun's TCPStore): waits with a timeout
    store = dist.distributed_c10d._get_default_store()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), store, timeout_s)


def rank_file(rank: int) -> str:
    """The file of a rank's own part of a checkpoint (its RNG states and data position)."""
    return f"trainer_state.rank{rank:05d}.pt"
