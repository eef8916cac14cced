"""Data: a built-in generator of imbalanced X-ray source catalogues, or scikit-learn's digits.

The generator draws sources of four classes named as in the seed, with the imbalance of real
X-ray catalogues (AGN dominate; cataclysmic variables are rare), from class-conditional
distributions of catalogue-like features: hardness ratios, band fluxes, variability, X-ray to
optical flux ratio, optical/infrared colours, galactic latitude, absorption column and spectral
index. Classes overlap like real ones: no single feature separates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

XRAY_CLASSES = ("AGN", "HM/LM", "YSO", "CV")
XRAY_FRACTIONS = (0.62, 0.20, 0.13, 0.05)
FEATURES = (
    "hr_soft_medium",
    "hr_medium_hard",
    "hr_hard_ultra",
    "log_flux_soft",
    "log_flux_medium",
    "log_flux_hard",
    "variability_index",
    "log_fx_fo",
    "w1_w2",
    "g_rp",
    "abs_gal_lat",
    "log_nh",
    "photon_index",
    "log_count_rate",
    "extent",
)

# per class: means of each feature (same order as FEATURES)
_MEANS = {
    "AGN": (-0.1, 0.1, -0.2, -13.6, -13.5, -13.4, 0.8, 0.3, 0.9, 0.6, 40.0, 20.8, 1.9, -2.2, 0.10),
    "HM/LM": (0.4, 0.5, 0.2, -12.1, -11.8, -11.5, 2.4, 1.4, 0.2, 1.2, 4.0, 22.0, 1.2, -0.8, 0.05),
    "YSO": (0.6, -0.3, -0.6, -14.0, -14.3, -14.8, 3.1, -1.8, 0.7, 1.9, 2.5, 21.6, 3.0, -2.7, 0.05),
    "CV": (0.0, 0.2, 0.1, -13.0, -12.9, -12.9, 2.8, 0.9, 0.1, 0.4, 22.0, 20.5, 1.4, -1.7, 0.05),
}
_SCALES = (
    0.616,
    0.616,
    0.66,
    1.21,
    1.21,
    1.32,
    1.98,
    1.76,
    0.77,
    0.99,
    30.8,
    1.21,
    0.99,
    1.21,
    0.132,
)  # wide enough that classes overlap like in real catalogues


@dataclass
class Dataset:
    x: np.ndarray  # float32 (N, F), standardised
    y: np.ndarray  # int64 (N,)
    class_names: list[str]
    feature_names: list[str]


def make_xray_sources(samples: int, classes: int = 4, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    names = list(XRAY_CLASSES[:classes])
    fractions = np.array(XRAY_FRACTIONS[:classes]) / sum(XRAY_FRACTIONS[:classes])
    counts = np.maximum(rng.multinomial(samples, fractions), 8)
    xs, ys = [], []
    dim = len(FEATURES)
    for label, (name, count) in enumerate(zip(names, counts, strict=True)):
        # correlated features: band fluxes move together, hardness ratios with absorption
        mixing = np.eye(dim) + 0.35 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
        z = rng.normal(size=(count, dim)) @ mixing.T
        x = np.array(_MEANS[name]) + z * np.array(_SCALES)
        x[:, 10] = np.abs(x[:, 10])  # |b| is non-negative
        xs.append(x)
        ys.append(np.full(count, label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    x = (x - x.mean(0)) / x.std(0)
    return Dataset(x.astype(np.float32), y.astype(np.int64), names, list(FEATURES))


def load_digits_dataset(classes: int = 10) -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = digits.target < classes
    x = digits.data[keep] / 16.0
    return Dataset(
        x.astype(np.float32), digits.target[keep].astype(np.int64), [str(i) for i in range(classes)], [f"pixel_{i}" for i in range(64)]
    )


def load_dataset(name: str, classes: int, samples: int, seed: int) -> Dataset:
    return make_xray_sources(samples, classes, seed) if name == "xray" else load_digits_dataset(classes)
