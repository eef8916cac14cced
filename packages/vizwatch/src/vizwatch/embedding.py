"""2-D embeddings that stay comparable from frame to frame.

Each method keeps its previous embedding: the next frame starts from it (t-SNE: openTSNE
optimisation continued with new affinities and no early exaggeration; UMAP: initialised with the
previous layout; PCA: refitted) and is then Procrustes-aligned (rotation, reflection, scale,
translation) onto the previous frame before plotting.
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes

METHODS = ("tsne", "umap", "pca")


def available(method: str) -> bool:
    module = {"tsne": "openTSNE", "umap": "umap", "pca": "sklearn"}[method]
    return importlib.util.find_spec(module) is not None


def resolve_method(method: str) -> str:
    """The method actually used: a missing optional library falls back with one warning."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if available(method):
        return method
    fallback = "tsne" if method == "umap" and available("tsne") else "pca"
    package = {"tsne": "openTSNE", "umap": "umap-learn"}[method]
    warnings.warn(f"vizwatch: {package} is not installed, using {fallback} instead (pip install {package})", stacklevel=2)
    return fallback


def align(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` rotated/reflected, scaled and shifted to best match ``reference``."""
    ref_center, pts_center = reference.mean(0), points.mean(0)
    ref0, pts0 = reference - ref_center, points - pts_center
    rotation, _ = orthogonal_procrustes(pts0, ref0)
    rotated = pts0 @ rotation
    scale = np.sum(ref0 * rotated) / max(np.sum(rotated * rotated), 1e-12)
    return rotated * scale + ref_center


def disparity(a: np.ndarray, b: np.ndarray) -> float:
    """Procrustes disparity (0: identical up to rotation, scale and shift; 1: unrelated)."""
    return float(procrustes(a, b)[2])


class Embedder:
    """Stateful: ``embed(X)`` warm-starts from, and aligns to, the previous call's result."""

    def __init__(self, method: str = "tsne", seed: int = 0, warm_iterations: int = 100) -> None:
        self.method = resolve_method(method)
        self.seed = seed
        self.warm_iterations = warm_iterations
        self.previous: np.ndarray | None = None

    def embed(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        raw = getattr(self, f"_{self.method}")(features)
        result = raw if self.previous is None else align(self.previous, raw)
        self.previous = result
        return result

    def _tsne(self, x: np.ndarray) -> np.ndarray:
        from openTSNE import TSNE, TSNEEmbedding, affinity

        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        method = "exact" if len(x) <= 3000 else "annoy"  # no numba compile for frame-sized sets
        if self.previous is None:
            # half openTSNE's default schedule: same trustworthiness on frame-sized sets, 2.5x faster
            tsne = TSNE(perplexity=perplexity, neighbors=method, random_state=self.seed, n_jobs=1, early_exaggeration_iter=125, n_iter=250)
            return np.asarray(tsne.fit(x))
        affinities = affinity.PerplexityBasedNN(x, perplexity=perplexity, method=method, random_state=self.seed, n_jobs=1)
        embedding = TSNEEmbedding(self.previous.copy(), affinities, random_state=self.seed, n_jobs=1)
        return np.asarray(embedding.optimize(n_iter=self.warm_iterations, exaggeration=None, momentum=0.8))

    def _umap(self, x: np.ndarray) -> np.ndarray:
        import umap

        if self.previous is None:
            reducer = umap.UMAP(n_components=2, random_state=self.seed, n_jobs=1)
        else:
            reducer = umap.UMAP(n_components=2, random_state=self.seed, n_jobs=1, init=self.previous, n_epochs=self.warm_iterations)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(reducer.fit_transform(x))

    def _pca(self, x: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=self.seed).fit_transform(x)


def trustworthiness(features: np.ndarray, embedding: np.ndarray, k: int = 10) -> float:
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    return float(sk_trustworthiness(np.asarray(features), embedding, n_neighbors=k))
