"""The fixed, stratified subset of points drawn once per run and reused by every frame."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` points with class proportions kept (all points if fewer)."""
    n = len(labels)
    if size >= n:
        return np.arange(n)
    indices = np.arange(n)
    try:
        chosen, _ = train_test_split(indices, train_size=size, stratify=labels, random_state=seed)
    except ValueError:  # a class too small to stratify: fall back to a plain random subset
        chosen = np.random.default_rng(seed).choice(n, size=size, replace=False)
    return np.sort(chosen)
