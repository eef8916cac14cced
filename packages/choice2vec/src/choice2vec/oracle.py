"""The ceiling: posterior decoding of the true hidden-state model with the generator's parameters.

For each participant, a two-state hidden Markov model whose transition matrix, initial
probabilities and per-trial emission likelihoods are exactly the generator's: engaged trials by
the drift-diffusion first-passage density of the observed (correctness, reaction time) at that
trial's coherence, disengaged ones by the lapse model. Forward-backward gives P(engaged | all the
participant's trials); labelling each trial by its more probable state is the best any method can
do on average.
"""

from __future__ import annotations

import numpy as np

from choice2vec import ddm
from choice2vec.task import Trials


def emission_likelihoods(trials: Trials) -> np.ndarray:
    """(N, 2) likelihoods of each trial under [disengaged, engaged]."""
    task, params = trials.task, trials.params
    ids = np.searchsorted(trials.participants(), trials.participant)
    gain, bound, t0 = params.gain[ids], params.bound[ids], params.non_decision[ids]
    drift = gain * trials.difficulty
    decision = trials.rt - t0
    engaged = np.where(trials.correct == 1, ddm.upper_density(decision, drift, bound), ddm.lower_density(decision, drift, bound))
    shifted = trials.rt - task.lapse_shift
    valid = shifted > 0
    safe = np.where(valid, shifted, 1.0)
    z = (np.log(safe) - np.log(task.lapse_rt_median)) / task.lapse_rt_sigma
    rt_density = np.where(valid, np.exp(-0.5 * z**2) / (safe * task.lapse_rt_sigma * np.sqrt(2 * np.pi)), 0.0)
    lapse = rt_density * np.where(trials.correct == 1, task.lapse_accuracy, 1 - task.lapse_accuracy)
    return np.stack([lapse, engaged], 1) + 1e-300


def posterior_engaged(trials: Trials) -> np.ndarray:
    """P(engaged | the participant's whole sequence) for every trial (forward-backward)."""
    task = trials.task
    transition = np.array([[task.stay_disengaged, 1 - task.stay_disengaged], [1 - task.stay_engaged, task.stay_engaged]])
    start = np.array([1 - task.start_engaged, task.start_engaged])
    like = emission_likelihoods(trials)
    out = np.empty(len(trials))
    for p in trials.participants():
        rows = np.flatnonzero(trials.participant == p)
        rows = rows[np.argsort(trials.trial[rows])]
        e = like[rows]
        n = len(rows)
        alpha = np.empty((n, 2))
        a = start * e[0]
        alpha[0] = a / a.sum()
        for i in range(1, n):
            a = (alpha[i - 1] @ transition) * e[i]
            alpha[i] = a / a.sum()
        beta = np.ones(2)
        post = np.empty((n, 2))
        post[-1] = alpha[-1]
        for i in range(n - 2, -1, -1):
            beta = transition @ (e[i + 1] * beta)
            beta /= beta.sum()
            g = alpha[i] * beta
            post[i] = g / g.sum()
        out[rows] = post[:, 1]
    return out


def oracle_labels(trials: Trials) -> np.ndarray:
    return (posterior_engaged(trials) > 0.5).astype(np.int64)
