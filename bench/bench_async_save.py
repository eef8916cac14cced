"""Async save stall: how long save() blocks the training thread with async_save=True, against a
synchronous save of the same state (a ~200 MB model + optimizer), measured in one run.

The stall is the host snapshot (a copy of every tensor); serialisation, hashing, writing, fsync
and the atomic rename happen on the writer thread while training goes on.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import report, timed  # noqa: E402

from trainer_core.checkpoint import CheckpointManager  # noqa: E402
from trainer_core.training_state import TorchState  # noqa: E402

torch.manual_seed(0)
model = nn.Sequential(*[nn.Linear(2048, 2048) for _ in range(6)])  # 25M params: 100 MB, + 100 MB momentum
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
model(torch.randn(4, 2048)).sum().backward()
optimizer.step()
STATE_MB = 2 * sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def save_times(async_save: bool, saves: int = 4) -> list[float]:
    """Time each save() call of one run's manager (training waits only this long)."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as root:
        manager = CheckpointManager(root, package="bench", layout="bench.async", async_save=async_save)
        stalls = []
        for step in range(1, saves + 1):
            stalls.append(timed(lambda step=step: manager.save(TorchState(model, optimizer).files({"step": step}), step=step)))
            manager.wait()  # stands for the training steps between two saves
        manager.close()
    return stalls


def main() -> None:
    save_times(False, 1)
    sync_runs, async_runs = [], []
    for _ in range(3):  # interleaved
        sync_runs += save_times(False)
        async_runs.append(save_times(True))
    sync = statistics.median(sync_runs)
    first = statistics.median(run[0] for run in async_runs)
    steady = statistics.median(t for run in async_runs for t in run[1:])
    ratio = steady / sync
    report(
        "async_save",
        {
            "state_mb": STATE_MB,
            "sync_save_s": sync,
            "async_stall_s": steady,
            "stall_ratio": ratio,
            "stall_pct": ratio * 100,
            "first_async_stall_s": first,
        },
        "async stall below 10% of a synchronous save (steady state: staging buffers reused from the first save on)",
        ratio < 0.10,
    )


if __name__ == "__main__":
    main()
