"""Train/validation split first, then oversampling of the training split only."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train indices, val indices), disjoint."""
    indices = np.arange(len(y))
    train, val = train_test_split(indices, test_size=val_fraction, stratify=y, random_state=seed)
    return np.sort(train), np.sort(val)


def oversample(train_indices: np.ndarray, y: np.ndarray, target: float, seed: int) -> np.ndarray:
    """Indices of the training split with minority classes repeated (imbalanced-learn's
    RandomOverSampler) until each has at least ``target`` times the largest class's count.

    Only training indices are ever repeated: validation points cannot leak in.
    """
    if target <= 0:
        return train_indices
    from imblearn.over_sampling import RandomOverSampler

    labels = y[train_indices]
    counts = np.bincount(labels)
    goal = int(np.ceil(target * counts.max()))
    strategy = {c: goal for c in range(len(counts)) if 0 < counts[c] < goal}
    if not strategy:
        return train_indices
    sampler = RandomOverSampler(sampling_strategy=strategy, random_state=seed)
    sampler.fit_resample(train_indices.reshape(-1, 1), labels)
    return train_indices[sampler.sample_indices_]
