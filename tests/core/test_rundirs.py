"""Run directories are never reused, even when several processes start at once."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from trainer_core.rundirs import allocate_run_dir, timestamped_run_dir


def _allocate(root):
    return str(allocate_run_dir(root))


def test_concurrent_allocation_never_collides(tmp_path):
    (tmp_path / "run_007").mkdir()  # an earlier run stays untouched
    (tmp_path / "run_007" / "keep.txt").write_text("x")
    with ProcessPoolExecutor(4) as pool:
        dirs = list(pool.map(_allocate, [tmp_path] * 12))
    assert len(set(dirs)) == 12
    assert sorted(d.rsplit("_", 1)[1] for d in dirs) == [f"{n:03d}" for n in range(8, 20)]
    assert (tmp_path / "run_007" / "keep.txt").read_text() == "x"


def test_timestamped_dirs_get_suffixes(tmp_path):
    now = datetime(2026, 1, 2, 3, 4, 5)
    a = timestamped_run_dir(tmp_path, "training_checkpoints_", now)
    b = timestamped_run_dir(tmp_path, "training_checkpoints_", now)
    assert a.name == "training_checkpoints_20260102_030405" and b.name == "training_checkpoints_20260102_030405_2"
