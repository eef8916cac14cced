"""Category discovery: groups of features that move together, found without labels.

Features are clustered hierarchically on the distance 1 - |correlation| with average linkage
(a linkage valid for any dissimilarity; Ward assumes Euclidean distances, which 1 - |r| is not).
K is the silhouette-best cut between 2 and ``max_clusters`` (or ``num_categories`` if given).
Each category is then normalised to zero mean and unit variance per feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Categories:
    groups: list[np.ndarray]  # feature (column) indices of each category, sorted
    silhouette: float
    scores: dict[int, float]  # silhouette of each K tried

    @property
    def count(self) -> int:
        return len(self.groups)

    def labels(self, num_features: int) -> np.ndarray:
        out = np.empty(num_features, dtype=np.int64)
        for c, group in enumerate(self.groups):
            out[group] = c
        return out


def correlation_distance(features: np.ndarray) -> np.ndarray:
    corr = np.corrcoef(features, rowvar=False)
    corr = np.nan_to_num(corr, nan=0.0)  # constant columns correlate with nothing
    distance = 1.0 - np.abs(corr)
    np.fill_diagonal(distance, 0.0)
    return np.clip((distance + distance.T) / 2, 0.0, 1.0)


def discover(
    features: np.ndarray, max_clusters: int = 50, num_categories: int | None = None, max_category_features: int | None = None
) -> Categories:
    """Cluster the columns of ``features`` (samples x features) into categories; with
    ``max_category_features``, a category wider than that is split (see :func:`split_wide`)."""
    found = _discover(features, max_clusters, num_categories)
    if max_category_features is None:
        return found
    return Categories(split_wide(features, found.groups, max_category_features), found.silhouette, found.scores)


def split_wide(features: np.ndarray, groups: list[np.ndarray], max_features: int) -> list[np.ndarray]:
    """Each group of more than ``max_features`` columns cut into ceil(d / max_features) sub-groups of
    equal size (within one), contiguous in the leaf order of the same clustering restricted to its
    columns (so correlated features stay together), so a wide category gets tokens in proportion to
    its width instead of the three a 3-feature category gets."""
    from scipy.cluster.hierarchy import leaves_list

    out: list[np.ndarray] = []
    for group in groups:
        parts = -(-len(group) // max_features)
        if parts <= 1:
            out.append(group)
            continue
        order = leaves_list(_tree(correlation_distance(features[:, group])))
        out.extend(np.sort(group[chunk]) for chunk in np.array_split(order, parts))
    out.sort(key=lambda g: g[0])
    return out


def _tree(distance: np.ndarray) -> np.ndarray:
    """Average-linkage clustering of a square dissimilarity matrix."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    return linkage(squareform(distance, checks=False), method="average")


def _discover(features: np.ndarray, max_clusters: int, num_categories: int | None) -> Categories:
    from scipy.cluster.hierarchy import fcluster
    from sklearn.metrics import silhouette_score

    num_features = features.shape[1]
    if num_features < 3:
        return Categories([np.arange(num_features)], 0.0, {})
    distance = correlation_distance(features)
    tree = _tree(distance)
    candidates = [num_categories] if num_categories else range(2, min(max_clusters, num_features - 1) + 1)
    scores: dict[int, float] = {}
    best: tuple[float, np.ndarray] | None = None
    for k in candidates:
        labels = fcluster(tree, k, criterion="maxclust")
        if len(np.unique(labels)) < 2:
            continue
        score = float(silhouette_score(distance, labels, metric="precomputed"))
        scores[int(k)] = score
        if best is None or score > best[0]:
            best = (score, labels)
    if best is None:
        return Categories([np.arange(num_features)], 0.0, scores)
    score, labels = best
    groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    groups.sort(key=lambda g: g[0])
    return Categories(groups, score, scores)


def normalization_stats(mean: np.ndarray, std: np.ndarray, categories: Categories) -> dict[str, np.ndarray]:
    """Per-category mean/std arrays (``mean_<c>``, ``std_<c>``), as saved in normalization_stats.npz."""
    out = {}
    for c, group in enumerate(categories.groups):
        out[f"mean_{c}"] = mean[group].astype(np.float32)
        out[f"std_{c}"] = np.maximum(std[group], 1e-6).astype(np.float32)
    return out
