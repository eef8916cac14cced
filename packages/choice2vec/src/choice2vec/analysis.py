"""What a checkpoint records about its representations: clustering, baselines, quality, figure.

Representations are computed for every trial of the held-out participants with full context
(:func:`choice2vec.objective.make_representer`); ``cluster_trials`` evenly spaced trials are
clustered (after standardising and keeping 16 principal components, the same for every
algorithm). The same 8 algorithms run on the raw per-trial features. Baselines: the majority
class, k-means on the raw features, and the oracle (forward-backward with the true model).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from choice2vec import clustering
from choice2vec.features import raw_features
from choice2vec.task import Trials


@dataclass
class HeldOut:
    """The held-out participants, their sequences and everything that does not change with training."""

    trials: Trials
    sequences: np.ndarray  # (P, T, 4)
    index: np.ndarray  # (P, T) rows of `trials`
    pick: np.ndarray  # flat positions (into P*T) of the clustered trials
    raw_results: dict[str, clustering.ClusterResult] | None
    raw_quality: dict[str, float] | None
    baselines: dict[str, float]

    @property
    def labels(self) -> np.ndarray | None:
        if self.trials.state is None:
            return None
        return self.trials.state[self.index.ravel()[self.pick]]


def prepare_held_out(
    trials: Trials, sequences: np.ndarray, index: np.ndarray, cluster_trials: int, seed: int = 0, algorithms: tuple[str, ...] | list[str] = clustering.ALGORITHMS
) -> HeldOut:
    from choice2vec.oracle import oracle_labels

    total = index.size
    pick = np.unique(np.linspace(0, total - 1, min(cluster_trials, total)).round().astype(int))
    rows = index.ravel()[pick]
    baselines: dict[str, float] = {}
    raw_results = raw_quality = None
    if trials.state is not None:
        labels = trials.state[rows]
        baselines["majority"] = float(max(labels.mean(), 1 - labels.mean()))
        raw = clustering.prepare(raw_features(trials)[rows], seed=seed)
        raw_results = clustering.run_all(raw, labels, seed=seed, algorithms=list(dict.fromkeys(["kmeans", *algorithms])))  # raw k-means: a baseline
        raw_quality = clustering.representation_quality(raw, labels, seed=seed)
        baselines["raw_kmeans"] = raw_results["kmeans"].accuracy
        baselines["raw_best"] = clustering.best(raw_results).accuracy
        if trials.params is not None and trials.task is not None:
            baselines["oracle"] = float(np.mean(oracle_labels(trials)[rows] == labels))
    return HeldOut(trials, sequences, index, pick, raw_results, raw_quality, baselines)


def analyse(
    representations: np.ndarray,
    held: HeldOut,
    epoch: int,
    training_metrics: dict[str, float],
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    algorithms: tuple[str, ...] | list[str] = clustering.ALGORITHMS,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON-able analysis, arrays for clustering_results.npz) of one checkpoint's representations."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    start = time.perf_counter()
    flat = representations.reshape(-1, representations.shape[-1])[held.pick]
    labels = held.labels
    points = clustering.prepare(flat, seed=seed)
    rows = held.index.ravel()[held.pick]
    t = held.trials
    arrays: dict[str, np.ndarray] = {
        "representations_256d": flat.astype(np.float32),
        "trial_rows": rows,
        "participant": t.participant[rows],
        "trial": t.trial[rows],
        "difficulty": t.difficulty[rows],
        "correct": t.correct[rows],
        "rt": t.rt[rows],
        "choice": t.choice[rows],
        "stimulus": t.stimulus[rows],
    }
    analysis: dict[str, Any] = {
        "epoch": epoch,
        "participants": len(np.unique(t.participant)),
        "trials": len(rows),
        "training_metrics": training_metrics,
        "baselines": held.baselines,
        "clustering_input": "standardised representations, 16 leading principal components",
    }
    if labels is not None:
        results = clustering.run_all(points, labels, seed=seed, log=log, algorithms=algorithms)
        best = clustering.best(results)
        analysis.update(
            algorithms={k: r.scores() for k, r in results.items()},
            raw_algorithms={k: r.scores() for k, r in held.raw_results.items()},
            best_algorithm=best.algorithm,
            best_accuracy=best.accuracy,
            representation_quality=clustering.representation_quality(points, labels, seed=seed),
            raw_representation_quality=held.raw_quality,
        )
        arrays["true_labels_binary"] = labels
        arrays["true_states"] = np.where(labels == 1, "engaged", "disengaged").astype("U10")
        arrays["best_clusters"] = best.labels
        for name, result in results.items():
            arrays[f"clusters_{name}"] = result.labels
    arrays["pca_2d"] = PCA(2, random_state=seed).fit_transform(points).astype(np.float32)
    tsne_index = np.random.default_rng(seed).choice(len(points), min(1000, len(points)), replace=False)
    tsne_index.sort()
    arrays["tsne_index"] = tsne_index
    arrays["tsne_2d"] = TSNE(2, init="pca", random_state=seed, perplexity=30).fit_transform(points[tsne_index]).astype(np.float32)
    analysis["analysis_seconds"] = time.perf_counter() - start
    return analysis, arrays
