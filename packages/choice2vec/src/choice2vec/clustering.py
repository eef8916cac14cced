"""Clustering analysis of representations: 8 algorithms, Hungarian-matched scores, baselines.

Every algorithm is asked for 2 clusters (HDBSCAN finds its own number). Scores against the true
engaged/disengaged labels:

* accuracy: the best one-to-one matching of clusters to labels (Hungarian algorithm on the
  confusion matrix); clusters left unmatched, and HDBSCAN's noise label (-1), count as errors;
* ARI and NMI (sklearn); silhouette of the clustering on the clustered points (NaN when it is
  undefined, e.g. a single cluster).

Representation quality: linear separability (5-fold cross-validated logistic regression accuracy
on the true labels, an upper bound for what a linear read-out can get) and the mean within-class
and between-class Euclidean distances (on at most ``quality_points`` points).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ALGORITHMS = (
    "kmeans",
    "minibatch_kmeans",
    "gaussian_mixture",
    "bayesian_gaussian_mixture",
    "agglomerative",
    "spectral",
    "birch",
    "hdbscan",
)
DISPLAY = {
    "kmeans": "K-Means",
    "minibatch_kmeans": "Mini-batch K-Means",
    "gaussian_mixture": "Gaussian Mixture",
    "bayesian_gaussian_mixture": "Bayesian Gaussian Mixture",
    "agglomerative": "Agglomerative (Ward)",
    "spectral": "Spectral",
    "birch": "Birch",
    "hdbscan": "HDBSCAN",
}


def hungarian_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy under the best one-to-one cluster-to-label matching; noise (-1) is always wrong."""
    from scipy.optimize import linear_sum_assignment

    labels, clusters = np.asarray(labels), np.asarray(clusters)
    label_values = np.unique(labels)
    cluster_values = np.unique(clusters[clusters >= 0])
    if len(cluster_values) == 0:
        return 0.0
    counts = np.array([[np.sum((clusters == c) & (labels == lab)) for lab in label_values] for c in cluster_values])
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(labels))


def _algorithms(seed: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from sklearn import cluster, mixture

    return {
        "kmeans": lambda x: cluster.KMeans(2, n_init=10, random_state=seed).fit_predict(x),
        "minibatch_kmeans": lambda x: cluster.MiniBatchKMeans(2, n_init=10, random_state=seed, batch_size=1024).fit_predict(x),
        "gaussian_mixture": lambda x: mixture.GaussianMixture(2, covariance_type="full", n_init=2, random_state=seed).fit_predict(x),
        "bayesian_gaussian_mixture": lambda x: mixture.BayesianGaussianMixture(
            n_components=2, covariance_type="full", random_state=seed, max_iter=300
        ).fit_predict(x),
        "agglomerative": lambda x: cluster.AgglomerativeClustering(2, linkage="ward").fit_predict(x),
        "spectral": lambda x: cluster.SpectralClustering(
            2, affinity="nearest_neighbors", n_neighbors=15, random_state=seed, assign_labels="cluster_qr"
        ).fit_predict(x),
        "birch": lambda x: cluster.Birch(n_clusters=2, threshold=0.5).fit_predict(x),
        "hdbscan": lambda x: cluster.HDBSCAN(min_cluster_size=max(10, len(x) // 20), min_samples=5, copy=True).fit_predict(x),
    }


@dataclass
class ClusterResult:
    algorithm: str
    labels: np.ndarray
    accuracy: float
    ari: float
    nmi: float
    silhouette: float
    seconds: float

    def scores(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "ari": self.ari, "nmi": self.nmi, "silhouette": self.silhouette, "seconds": self.seconds}


def prepare(points: np.ndarray, dims: int = 16, seed: int = 0) -> np.ndarray:
    """Standardise, then keep the ``dims`` leading principal components (every algorithm sees the
    same input; the full-covariance mixtures and spectral clustering need few dimensions)."""
    from sklearn.decomposition import PCA

    x = np.asarray(points, dtype=np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
    if x.shape[1] > dims:
        x = PCA(dims, random_state=seed).fit_transform(x)
    return x


def run_all(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    algorithms: tuple[str, ...] | list[str] = ALGORITHMS,
) -> dict[str, ClusterResult]:
    """Each of ``algorithms`` (default: all eight) on ``points``, scored against ``labels``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    results = {}
    every = _algorithms(seed)
    for name in algorithms:
        fit = every[name]
        if log:
            log(f"   Running {DISPLAY[name]}...")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clusters = np.asarray(fit(points))
        seconds = time.perf_counter() - start
        kept = clusters >= 0
        try:
            sil = float(silhouette_score(points[kept], clusters[kept], sample_size=min(2000, kept.sum()), random_state=seed))
        except ValueError:
            sil = float("nan")
        result = ClusterResult(
            name,
            clusters,
            hungarian_accuracy(labels, clusters),
            float(adjusted_rand_score(labels, clusters)),
            float(normalized_mutual_info_score(labels, clusters)),
            sil,
            seconds,
        )
        results[name] = result
        if log:
            log(f"       Accuracy: {result.accuracy:.3f}")
    return results


def representation_quality(points: np.ndarray, labels: np.ndarray, *, seed: int = 0, quality_points: int = 1500) -> dict[str, float]:
    from scipy.spatial.distance import cdist
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        separability = float(cross_val_score(LogisticRegression(max_iter=1000), points, labels, cv=5).mean())
    pick = rng.choice(len(points), min(quality_points, len(points)), replace=False)
    x, y = points[pick], labels[pick]
    d = cdist(x, x)
    same = y[:, None] == y[None, :]
    off = ~np.eye(len(x), dtype=bool)
    within = float(d[same & off].mean())
    between = float(d[~same].mean()) if (~same).any() else float("nan")
    return {
        "linear_separability": separability,
        "within_class_distance": within,
        "between_class_distance": between,
        "distance_ratio": between / within,
    }


def best(results: dict[str, ClusterResult]) -> ClusterResult:
    return max(results.values(), key=lambda r: r.accuracy)
