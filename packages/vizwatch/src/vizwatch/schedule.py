"""When to snapshot: epoch 1, the milestones, every N epochs and the last epoch."""

from __future__ import annotations

MILESTONES = (1, 5, 10, 25, 50, 75, 100)


def should_snapshot(epoch: int, total_epochs: int | None, every: int) -> bool:
    return epoch in MILESTONES or (every > 0 and epoch % every == 0) or (total_epochs is not None and epoch == total_epochs)


def snapshot_epochs(total_epochs: int, every: int) -> list[int]:
    return [e for e in range(1, total_epochs + 1) if should_snapshot(e, total_epochs, every)]
