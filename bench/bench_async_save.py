"""Async save stall: how long save() blocks the training thread with async_save=True, against a
synchronous save of the same state (a ~200 MB model + optimizer), measured in one run.

The stall is the host snapshot (a copy of every tensor); serialisation, hashing, writing, fsync
and the atomic rename happen on the writer thread while training goes on.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, report, timed  # noqa: E402

from trainer_core.checkpoint import CheckpointManager  # noqa: E402
from trainer_core.training_state import training_state  # noqa: E402

torch.manual_seed(0)
model = nn.Sequential(*[nn.Linear(2048, 2048) for _ in range(6)])  # 25M params: 100 MB, + 100 MB momentum
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
model(torch.randn(4, 2048)).sum().backward()
optimizer.step()


def save_time(async_save: bool) -> float:
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as root:
        manager = CheckpointManager(root, package="bench", layout="bench.async", async_save=async_save)
        stall = timed(lambda: manager.save(training_state(model, optimizer), step=1))
        manager.close()  # wait for the background write before the next round
    return stall


def main() -> None:
    save_time(False), save_time(True)
    sync, stall = interleaved(lambda: save_time(False), lambda: save_time(True), rounds=5)
    ratio = stall / sync
    report(
        "async_save",
        {"sync_save_s": sync, "async_stall_s": stall, "stall_ratio": ratio, "stall_pct": ratio * 100},
        "async stall below 10% of a synchronous save",
        ratio < 0.10,
    )


if __name__ == "__main__":
    main()
