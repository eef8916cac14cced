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

import atexit
import os
import warnings
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

    def all_sum(self, values: list[float]) -> list[float]:
        """The sums over the ranks of a few numbers (an epoch's loss and counts, for the log)."""
        if not self.multi:
            return list(values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def average_gradients(self, parameters: Any) -> None:
        """Average the gradients over the ranks (one all-reduce of them all, flattened), for a
        trainer whose step does not go through DDP's forward (arc's games call the model's parts).
        Only parameters with a gradient take part: every rank runs the same graph, so the same ones."""
        if not self.multi:
            return
        import torch
        import torch.distributed as dist

        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def publish(self, key: str, value: str | bytes) -> None:
        self.store.set(key, value)

    def receive(self, key: str, what: str, timeout_s: float | None = None) -> str:
        """The value another rank publishes under ``key``, waiting at most ``timeout_s`` (default:
        the world's)."""
        return self.receive_bytes(key, what, timeout_s).decode()

    def receive_bytes(self, key: str, what: str, timeout_s: float | None = None) -> bytes:
        """Like :meth:`receive`, the raw bytes."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        try:
            self.store.wait([key], timedelta(seconds=timeout_s))
        except Exception as exc:  # noqa: BLE001 - the store raises its own (DistStoreError, RuntimeError) on a timeout
            raise CheckpointError(
                f"rank {self.rank}: {what} did not arrive within {timeout_s:g} s ({type(exc).__name__}); "
                "another rank died or is stuck: the previous checkpoint is intact, resume from it"
            ) from None
        return bytes(self.store.get(key))


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
        atexit.register(_leave)  # a process group left to the interpreter's exit can abort it (a thread still joinable)
    # the default group's key-value store (a PrefixStore over torchrun's TCPStore): waits with a timeout
    store = dist.distributed_c10d._get_default_store()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), store, timeout_s)


class _JaxStore:
    """jax.distributed's key-value service seen as the store :class:`World` uses (set, wait, get)."""

    def __init__(self, client: Any) -> None:
        self.client, self._arrived = client, {}

    def set(self, key: str, value: str | bytes) -> None:
        self.client.key_value_set_bytes(key, value.encode() if isinstance(value, str) else value)

    def wait(self, keys: list[str], timeout: timedelta) -> None:
        for key in keys:
            self._arrived[key] = self.client.blocking_key_value_get_bytes(key, max(int(timeout.total_seconds() * 1000), 1))

    def get(self, key: str) -> bytes:
        return self._arrived.pop(key)


def jax_world() -> World:
    """The world of a JAX job started with ``jax.distributed.initialize``: this process's index
    among ``jax.process_count()``, the multi-rank commit going through jax's own key-value service
    (the same protocol and timeout as under torchrun); a world of one otherwise."""
    import jax

    if jax.process_count() <= 1:
        return SINGLE
    from jax._src.distributed import global_state  # the client jax.distributed.initialize made (orbax uses it too)

    timeout_s = float(os.environ.get("TRAINER_CORE_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    return World(jax.process_index(), jax.process_count(), jax.process_index(), _JaxStore(global_state.client), timeout_s)


def _leave() -> None:
    """Destroy the process group at exit, so its threads are joined before the interpreter goes."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001, S110 - leaving anyway; nothing is left to tell
            pass


def single_process_only(command: str, why: str) -> None:
    """Refuse, in one line (exit 2), a command that runs in one process when torchrun starts
    several: two copies would race on the same files instead of training together."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size > 1:
        from trainer_core.errors import UsageError

        raise UsageError(f"{command} runs in one process ({why}); run it without torchrun (WORLD_SIZE is {size})")


def rank_file(rank: int) -> str:
    """The file of a rank's own part of a checkpoint (its RNG states and data position)."""
    return f"trainer_state.rank{rank:05d}.pt"


class GlobalBatches:
    """The batches of one epoch, as this rank sees them: the distributed sampler of every trainer.

    The global order is :func:`~trainer_core.training_state.epoch_permutation` of (seed, epoch),
    cut into global batches of ``batch_size``; rank ``r`` of ``n`` takes items ``r, r+n, ...`` of
    each. So the samples of a global batch, and the whole order, do not depend on the world size,
    and a run resumes mid-epoch from the global batch index alone (``start``) at any world size.
    Iterating yields index tensors; ``len()`` is the number of global batches left. With a batch
    size divisible by the world size every rank's share is equal, and DDP's averaged gradient is
    the gradient of the global batch (the last, partial batch is dropped with ``drop_last``).
    """

    def __init__(self, num_items: int, batch_size: int, *, seed: int, epoch: int, world: World = SINGLE,
                 start: int = 0, drop_last: bool = False, order: Any = None) -> None:  # fmt: skip
        self.num_items, self.batch_size, self.world, self._order = int(num_items), int(batch_size), world, order
        self.seed, self.epoch, self.start = int(seed), int(epoch), int(start)
        full, rest = divmod(self.num_items, self.batch_size)
        self.total = full + (1 if rest and not drop_last else 0)

    def __len__(self) -> int:
        return max(self.total - self.start, 0)

    def permutation(self) -> Any:
        """The epoch's global order: ``order`` when given (a trainer keeping the permutation its
        single-process runs always drew, itself a function of seed and epoch), else epoch_permutation."""
        from trainer_core.training_state import epoch_permutation

        return self._order if self._order is not None else epoch_permutation(self.num_items, self.epoch, self.seed)

    def global_batch(self, index: int) -> Any:
        """Every rank's samples of global batch ``index`` (the same tensor on every rank)."""
        return self.permutation()[index * self.batch_size : (index + 1) * self.batch_size]

    def __iter__(self):
        order = self.permutation()
        for index in range(self.start, self.total):
            yield order[index * self.batch_size : (index + 1) * self.batch_size][self.world.rank :: self.world.size]


def uneven_share_warning(batch_size: int, world: World) -> str | None:
    """One line when a global batch does not split evenly over the ranks (DDP then weighs the
    smaller shares' samples more than a single process would)."""
    if world.multi and batch_size % world.size:
        return (f"warning: batch size {batch_size} does not split evenly over {world.size} ranks; "
                f"the result differs from one process at the same batch (use a multiple of {world.size})")  # fmt: skip
    return None


class BatchShare:
    """This rank's rows of one global batch, and the way to see the whole batch again.

    For losses over the whole batch (a codebook's statistics, pairwise or contrastive terms): each
    rank encodes its share (rows ``rank, rank+size, ...`` of the global batch, as
    :class:`GlobalBatches` hands them out), :meth:`gather` puts every rank's rows back in the global
    order with autograd (``torch.distributed.nn.all_gather``: gradients flow back to the rank that
    owns each row), and :meth:`local` takes this rank's rows of a global tensor again. A term that
    every rank computes alike on gathered tensors then gets, after DDP's averaging, exactly its
    single-process gradient; a per-sample term summed over the local rows must be scaled by
    :attr:`scale` (``size / global batch length``) to be the global mean.
    """

    def __init__(self, world: World, batch_len: int) -> None:
        import torch

        self.world, self.batch_len = world, int(batch_len)
        size = world.size
        self.sizes = [len(range(r, self.batch_len, size)) for r in range(size)]
        self.rows = max(self.sizes)
        # gathered (padded) layout: rank s's j-th row at s*rows + j; global position j*size + s
        self.order = torch.tensor([(i % size) * self.rows + i // size for i in range(self.batch_len)], dtype=torch.long)
        self.mine = torch.arange(world.rank, self.batch_len, size, dtype=torch.long)
        self.scale = size / max(self.batch_len, 1)

    def gather(self, tensor: Any) -> Any:
        """Every rank's rows of ``tensor`` (this rank's share), in the global batch order."""
        import torch
        from torch.distributed.nn.functional import all_gather

        if not self.world.multi:
            return tensor
        if len(tensor) < self.rows:
            tensor = torch.cat([tensor, tensor.new_zeros((self.rows - len(tensor), *tensor.shape[1:]))])
        with warnings.catch_warnings():  # its deprecation points at a private module; it is the public autograd gather
            warnings.simplefilter("ignore", FutureWarning)
            gathered = all_gather(tensor)
        return torch.cat(gathered, 0).index_select(0, self.order.to(tensor.device))

    def local(self, tensor: Any) -> Any:
        """This rank's rows of a global-batch tensor."""
        return tensor if not self.world.multi else tensor.index_select(0, self.mine.to(tensor.device))

    def broadcast_(self, *tensors: Any) -> None:
        """Make every rank's ``tensors`` rank 0's (a decision taken once: an initialisation, a reset)."""
        import torch.distributed as dist

        if self.world.multi:
            for tensor in tensors:
                dist.broadcast(tensor, src=0)

    def total(self, tensor: Any) -> Any:
        """The sum over ranks of ``tensor`` (detached values for logging, statistics)."""
        import torch.distributed as dist

        if self.world.multi:
            tensor = tensor.detach().clone()
            dist.all_reduce(tensor)
        return tensor
