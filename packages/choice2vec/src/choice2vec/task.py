"""The simulated decision task: participants who drift in and out of engagement.

Each participant does ``trials_per_participant`` two-alternative trials. A hidden state follows a
sticky two-state Markov chain (``stay_engaged``, ``stay_disengaged``). Engaged trials are a
drift-diffusion process: drift ``gain x coherence`` toward the correct side, bound separation
``bound``, non-decision time ``non_decision`` (each participant has their own, drawn from the
ranges below); so accuracy and reaction time depend on difficulty. Disengaged trials are lapses:
the choice is correct with probability ``lapse_accuracy`` whatever the difficulty and the reaction
time is ``lapse_shift`` + lognormal(``lapse_rt_median``, ``lapse_rt_sigma``), a distribution that
overlaps the engaged one. The reward is 1 for a correct choice.

The difficulty knobs: a higher ``lapse_accuracy``, lapse reaction times closer to the engaged ones,
less sticky states or easier coherences make single trials harder to tell apart; the defaults make
clustering raw per-trial features clearly imperfect while a model of the sequence can do much
better (the oracle in :mod:`choice2vec.oracle` measures the ceiling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from choice2vec import ddm


@dataclass(frozen=True)
class TaskConfig:
    participants: int = 48
    trials_per_participant: int = 400
    coherences: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)
    stay_engaged: float = 0.98
    stay_disengaged: float = 0.95
    start_engaged: float = 0.8
    gain_range: tuple[float, float] = (1.8, 3.2)
    bound_range: tuple[float, float] = (1.0, 1.5)
    non_decision_range: tuple[float, float] = (0.25, 0.40)
    lapse_accuracy: float = 0.5
    lapse_shift: float = 0.2
    lapse_rt_median: float = 0.45
    lapse_rt_sigma: float = 0.5
    seed: int = 0

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> TaskConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass
class ParticipantParameters:
    gain: np.ndarray
    bound: np.ndarray
    non_decision: np.ndarray


@dataclass
class Trials:
    """One row per trial, grouped by participant in trial order (struct of arrays)."""

    participant: np.ndarray  # int
    trial: np.ndarray  # int, index within the participant
    stimulus: np.ndarray  # int, 0 left / 1 right
    difficulty: np.ndarray  # float, the coherence (lower is harder)
    choice: np.ndarray  # int, 0 left / 1 right
    correct: np.ndarray  # int 0/1
    rt: np.ndarray  # float seconds
    reward: np.ndarray  # float
    state: np.ndarray | None = None  # int, 1 engaged / 0 disengaged, when known
    params: ParticipantParameters | None = field(default=None, repr=False)
    task: TaskConfig | None = None

    COLUMNS = ("participant", "trial", "stimulus", "difficulty", "choice", "correct", "rt", "reward")

    def __len__(self) -> int:
        return len(self.rt)

    @property
    def true_states(self) -> np.ndarray:
        """'engaged' / 'disengaged' strings (the seed's labels)."""
        return np.where(self.state == 1, "engaged", "disengaged")

    def participants(self) -> np.ndarray:
        return np.unique(self.participant)

    def subset(self, participants: np.ndarray) -> Trials:
        keep = np.isin(self.participant, participants)
        params = self.params
        if params is not None:
            ids = np.asarray(participants)
            params = ParticipantParameters(params.gain[ids], params.bound[ids], params.non_decision[ids])
        return Trials(
            **{c: getattr(self, c)[keep] for c in self.COLUMNS},
            state=None if self.state is None else self.state[keep],
            params=params,
            task=self.task,
        )


def simulate(config: TaskConfig = TaskConfig()) -> Trials:
    """Simulate the task; deterministic from ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    n, t = config.participants, config.trials_per_participant
    gain = rng.uniform(*config.gain_range, n)
    bound = rng.uniform(*config.bound_range, n)
    non_decision = rng.uniform(*config.non_decision_range, n)
    state = np.zeros((n, t), dtype=np.int64)
    state[:, 0] = rng.random(n) < config.start_engaged
    for i in range(1, t):
        stay = np.where(state[:, i - 1] == 1, config.stay_engaged, config.stay_disengaged)
        flip = rng.random(n) >= stay
        state[:, i] = np.where(flip, 1 - state[:, i - 1], state[:, i - 1])
    stimulus = rng.integers(0, 2, (n, t))
    level = rng.integers(0, len(config.coherences), (n, t))
    coherence = np.asarray(config.coherences)[level]
    correct = np.zeros((n, t), dtype=np.int64)
    rt = np.zeros((n, t))
    for p in range(n):
        for lv, c in enumerate(config.coherences):
            cell = (state[p] == 1) & (level[p] == lv)
            if cell.any():
                upper, decision = ddm.sample(gain[p] * c, bound[p], int(cell.sum()), rng)
                correct[p, cell] = upper
                rt[p, cell] = non_decision[p] + decision
    lapses = state == 0
    correct[lapses] = rng.random(lapses.sum()) < config.lapse_accuracy
    rt[lapses] = config.lapse_shift + np.exp(np.log(config.lapse_rt_median) + config.lapse_rt_sigma * rng.standard_normal(lapses.sum()))
    choice = np.where(correct == 1, stimulus, 1 - stimulus)
    return Trials(
        participant=np.repeat(np.arange(n), t),
        trial=np.tile(np.arange(t), n),
        stimulus=stimulus.ravel(),
        difficulty=coherence.ravel(),
        choice=choice.ravel(),
        correct=correct.ravel(),
        rt=rt.ravel(),
        reward=correct.ravel().astype(float),
        state=state.ravel(),
        params=ParticipantParameters(gain, bound, non_decision),
        task=config,
    )
