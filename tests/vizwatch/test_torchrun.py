"""`torchrun --nproc_per_node=2 vizwatch train`: one checkpoint series with both ranks' parts, and
the latent snapshots drawn once, by rank 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer_core import list_committed, verify_checkpoint

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def test_two_ranks_write_one_series_and_one_set_of_snapshots(tmp_path):
    result = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "vizwatch"), "train", "--samples", "900", "--epochs", "3",
         "--visualize-training", "--viz-every", "3", "--viz-method", "pca", "--viz-root", str(tmp_path / "viz"), "--output",
         str(tmp_path / "run"), "--no-progress", "--set", "viz_worker=thread"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("completed: epoch 3") == 1  # rank 1 prints nothing
    series = list_committed(tmp_path / "run" / "checkpoints")
    assert [c.epoch for c in series] == [1, 2, 3]
    assert all(c.extra["world_size"] == 2 and verify_checkpoint(c.path).status == "ok" for c in series)
    runs = sorted(p.name for p in (tmp_path / "viz").iterdir())
    assert runs == ["run_001"]  # one set of pictures: rank 0's
    assert sorted(p.name for p in (tmp_path / "viz" / "run_001").glob("epoch_*.png"))[0].startswith("epoch_001")
