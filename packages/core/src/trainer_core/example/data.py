"""Generated classification data: noisy interleaved spirals, deterministic from a seed."""

from __future__ import annotations

import numpy as np


def make_spirals(samples: int, classes: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=samples)
    radius = rng.uniform(0.1, 1.0, size=samples)
    angle = 2.5 * np.pi * radius + 2 * np.pi * labels / classes + rng.normal(0, noise, size=samples)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return points.astype(np.float32), labels.astype(np.int64)
