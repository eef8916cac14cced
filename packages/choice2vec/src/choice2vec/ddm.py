"""The drift-diffusion model: first-passage time densities (Navarro & Fuss, 2009) and exact
sampling from them on a fine time grid.

The evidence starts at ``w * a`` between an absorbing lower bound at 0 and an upper bound at
``a`` and drifts at ``v`` per second with unit diffusion. The upper bound is the correct response
when the drift points to it.
"""

from __future__ import annotations

import numpy as np

_SMALL_TERMS = 8  # k = -8..8 in the small-time series
_LARGE_TERMS = 40


def _standard_lower(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Density of hitting the lower bound at normalised time u for v = 0, a = 1, start w."""
    u = np.maximum(u, 1e-12)
    small = u < 1.0
    out = np.zeros(np.broadcast(u, w).shape)
    uu, ww = np.broadcast_arrays(u, w)
    if small.any():
        us, ws = uu[small][..., None], ww[small][..., None]
        k = np.arange(-_SMALL_TERMS, _SMALL_TERMS + 1)
        terms = (ws + 2 * k) * np.exp(-((ws + 2 * k) ** 2) / (2 * us))
        out[small] = terms.sum(-1) / np.sqrt(2 * np.pi * us[..., 0] ** 3)
    if (~small).any():
        ul, wl = uu[~small][..., None], ww[~small][..., None]
        k = np.arange(1, _LARGE_TERMS + 1)
        terms = k * np.exp(-(k**2) * np.pi**2 * ul / 2) * np.sin(k * np.pi * wl)
        out[~small] = np.pi * terms.sum(-1)
    return np.maximum(out, 0.0)


def lower_density(t: np.ndarray, v: np.ndarray, a: np.ndarray, w: np.ndarray | float = 0.5) -> np.ndarray:
    """Density of reaching the lower bound at decision time ``t`` (seconds; 0 for t <= 0)."""
    t, v, a, w = np.broadcast_arrays(np.asarray(t, float), np.asarray(v, float), np.asarray(a, float), np.asarray(w, float))
    positive = t > 0
    out = np.zeros(t.shape)
    tp, vp, ap, wp = t[positive], v[positive], a[positive], w[positive]
    out[positive] = np.exp(-vp * ap * wp - vp**2 * tp / 2) / ap**2 * _standard_lower(tp / ap**2, wp)
    return out


def upper_density(t: np.ndarray, v: np.ndarray, a: np.ndarray, w: np.ndarray | float = 0.5) -> np.ndarray:
    """Density of reaching the upper bound at decision time ``t``."""
    return lower_density(t, -np.asarray(v, float), a, 1 - np.asarray(w, float))


def upper_probability(v: np.ndarray, a: np.ndarray, w: np.ndarray | float = 0.5) -> np.ndarray:
    """Probability of ever reaching the upper bound first."""
    v, a, w = (np.asarray(x, float) for x in (v, a, w))
    small = np.abs(v) < 1e-8
    safe_v = np.where(small, 1.0, v)
    p = (1 - np.exp(-2 * safe_v * a * w)) / (1 - np.exp(-2 * safe_v * a))
    return np.where(small, w, p)


def sample(v: float, a: float, size: int, rng: np.random.Generator, w: float = 0.5, dt: float = 0.001, horizon: float = 5.0):
    """``size`` draws of (hit upper bound?, decision time) from the exact densities on a ``dt`` grid
    (uniform within the grid cell). Returns (upper: bool array, time: float array)."""
    centres = (np.arange(int(horizon / dt)) + 0.5) * dt
    up = upper_density(centres, v, a, w) * dt
    low = lower_density(centres, v, a, w) * dt
    mass = np.concatenate([up, low])
    mass /= mass.sum()
    cells = rng.choice(len(mass), size=size, p=mass)
    upper = cells < len(centres)
    times = (cells % len(centres) + rng.random(size)) * dt
    return upper, times
