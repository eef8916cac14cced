"""The simulated task, the oracle, the clustering scores: the parts every figure relies on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from choice2vec import ddm
from choice2vec.clustering import hungarian_accuracy
from choice2vec.task import TaskConfig, simulate


def _brute_force(labels, clusters):
    """Best accuracy over every assignment of cluster ids to distinct labels; noise (-1) is never right."""
    ids = [c for c in np.unique(clusters) if c >= 0]
    values = list(np.unique(labels))
    best = 0.0
    for chosen in itertools.permutations(values + [None] * len(ids), len(ids)):
        mapped = np.array([dict(zip(ids, chosen, strict=True)).get(c) if c >= 0 else None for c in clusters], dtype=object)
        best = max(best, float(np.mean(mapped == labels)))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_hungarian_accuracy_equals_brute_force_with_noise_as_errors(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    clusters = rng.integers(-1, 1 + seed % 4, 60)  # -1 is noise (DBSCAN/HDBSCAN); up to 4 clusters
    assert hungarian_accuracy(labels, clusters) == pytest.approx(_brute_force(labels, clusters))


def test_noise_counts_as_errors():
    labels = np.array([0, 0, 1, 1])
    assert hungarian_accuracy(labels, np.array([5, 5, 7, 7])) == 1.0
    assert hungarian_accuracy(labels, np.array([-1, -1, 7, 7])) == 0.5
    assert hungarian_accuracy(labels, np.array([-1, -1, -1, -1])) == 0.0


def test_ddm_densities_integrate_to_the_choice_probabilities():
    t = (np.arange(20000) + 0.5) * 0.0005
    for v, a in ((0.0, 1.0), (1.5, 1.2), (-2.0, 1.6)):
        up = ddm.upper_density(t, v, a).sum() * 0.0005
        low = ddm.lower_density(t, v, a).sum() * 0.0005
        assert up == pytest.approx(ddm.upper_probability(v, a), abs=1e-4)
        assert up + low == pytest.approx(1.0, abs=1e-4)


def test_simulation_is_deterministic_and_has_the_documented_structure():
    a, b = (
        simulate(TaskConfig(participants=6, trials_per_participant=300)),
        simulate(TaskConfig(participants=6, trials_per_participant=300)),
    )
    np.testing.assert_array_equal(a.rt, b.rt)
    np.testing.assert_array_equal(a.state, b.state)
    engaged, lapse = a.state == 1, a.state == 0
    assert 0.55 < engaged.mean() < 0.85  # stationary share of the sticky chain (about 0.71)
    easy = a.difficulty == max(a.task.coherences)
    assert a.correct[engaged & easy].mean() > 0.8  # engaged trials follow difficulty
    assert abs(a.correct[lapse].mean() - 0.5) < 0.08  # lapses are near chance
    runs = np.diff(np.flatnonzero(np.diff(a.state) != 0))
    assert runs.mean() > 8  # states persist over runs of trials
    assert (a.choice == np.where(a.correct == 1, a.stimulus, 1 - a.stimulus)).all()


def test_oracle_beats_raw_clustering_and_single_trials():
    from sklearn.cluster import KMeans

    from choice2vec.features import raw_features
    from choice2vec.oracle import emission_likelihoods, oracle_labels

    trials = simulate(TaskConfig(participants=10))
    oracle = np.mean(oracle_labels(trials) == trials.state)
    raw = hungarian_accuracy(trials.state, KMeans(2, n_init=5, random_state=0).fit_predict(raw_features(trials)))
    e = emission_likelihoods(trials)
    single = np.mean((e[:, 1] * 0.7 > e[:, 0] * 0.3) == trials.state)
    majority = max(trials.state.mean(), 1 - trials.state.mean())
    assert oracle > single + 0.1 and oracle > raw + 0.15 and oracle > majority + 0.1
    assert raw < majority + 0.05  # raw per-trial features are clearly imperfect
