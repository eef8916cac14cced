"""Per-trial model inputs from trials.

Four numbers per trial: the coherence, correctness as -1/+1, the standardised log reaction time and
the reward. The stimulus and choice sides are left out on purpose: the task is symmetric, so they
say nothing about engagement beyond correctness, and as the largest per-trial variation they
would dominate the representations (clusterings then split trials by side). A masked trial is
hidden entirely: the model predicts its behaviour from the trials around it.
"""

from __future__ import annotations

import numpy as np

from choice2vec.task import Trials

NAMES = ("difficulty", "correct", "log_rt", "reward")
CORRECT, LOG_RT = 1, 2
LOG_RT_MEAN, LOG_RT_STD = -0.5, 0.5  # fixed (not fitted), so every dataset is scaled the same way


def trial_features(trials: Trials) -> np.ndarray:
    """(N, 4) float32 model inputs, in the trials' order."""
    return np.stack(
        [
            trials.difficulty,
            2.0 * trials.correct - 1,
            (np.log(trials.rt) - LOG_RT_MEAN) / LOG_RT_STD,
            trials.reward,
        ],
        1,
    ).astype(np.float32)


def raw_features(trials: Trials) -> np.ndarray:
    """What the raw-feature baseline clusters: correctness, log RT, difficulty and reward,
    standardised. The stimulus and choice sides are left out: they carry nothing about engagement
    and would only let a clustering split trials by side."""
    x = np.stack([trials.correct, np.log(trials.rt), trials.difficulty, trials.reward], 1).astype(np.float64)
    return (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)


def sequences(trials: Trials) -> tuple[np.ndarray, np.ndarray]:
    """(participants, trials, 4) inputs and the (participants, trials) row index of each, for
    datasets where every participant has the same number of trials."""
    ids = trials.participants()
    rows = [np.flatnonzero(trials.participant == p) for p in ids]
    rows = [r[np.argsort(trials.trial[r])] for r in rows]
    length = min(len(r) for r in rows)
    index = np.stack([r[:length] for r in rows])
    return trial_features(trials)[index], index
