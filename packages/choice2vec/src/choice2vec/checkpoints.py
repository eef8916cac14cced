"""Checkpoint files and the Python API to read them (no pickle unless asked for explicitly).

``training_checkpoints_<timestamp>/checkpoint_epoch_XXXXXX/``:

| file | format | contents |
|---|---|---|
| `model_weights.msgpack` | flax msgpack | the parameters (`params`) |
| `training_state.msgpack` | flax msgpack | optimiser state, PRNG key, epoch: what `--resume` continues from |
| `checkpoint.json` | JSON | `model_config`, `training_config`, `data_config`, `training_history`, `epoch` |
| `clustering_results.json` | JSON | per-algorithm scores, raw-feature scores, baselines, representation quality, training metrics |
| `clustering_results.npz` | npz (no pickle) | `representations_256d`, `true_states`, `true_labels_binary`, cluster labels per algorithm, trial info (participant, trial, difficulty, correct, rt, choice, stimulus), 2-D PCA and t-SNE |
| `checkpoint_epoch_XXXXXX_visualization.png` | PNG | the 4-row figure |
| `manifest.json` | JSON | trainer-core's commit record: sizes, sha256, epoch, headline metrics |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer_core import JAX_PARAMS_FILE as WEIGHTS
from trainer_core import JAX_STATE_FILE as STATE
from trainer_core import CheckpointLayout, UsageError
from trainer_core import load_checkpoint as core_load

PACKAGE = "choice2vec"
LAYOUT_SPEC = CheckpointLayout(
    name="choice2vec.checkpoint",
    package=PACKAGE,
    kind="training",
    version=2,  # v2: core's JAX training state (opt_state, key, RNGs, position)
    headline_metrics=("best_accuracy", "best_algorithm", "baseline_oracle", "total_loss"),
    checkpoint_dir="",  # checkpoint_epoch_XXXXXX/ sit in the run directory, as in the seed
    name_format="checkpoint_epoch_{epoch:06d}",
    model="choice2vec.wav2vec",
    description="training_checkpoints_<time>/checkpoint_epoch_XXXXXX/: flax msgpack weights and state, clustering results, 4-row figure",
)
LAYOUT = LAYOUT_SPEC.name
META = "checkpoint.json"
RESULTS_JSON = "clustering_results.json"
RESULTS_NPZ = "clustering_results.npz"
LEGACY_WEIGHTS = "model_weights.pkl"
LEGACY_RESULTS = "clustering_results.pkl"


def checkpoint_name(epoch: int) -> str:
    return f"checkpoint_epoch_{epoch:06d}"


def figure_name(epoch: int) -> str:
    return f"{checkpoint_name(epoch)}_visualization.png"


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``Choice2Vec(**model_config)`` rebuilds the model for ``params``."""

    path: Path
    epoch: int
    params: Any
    model_config: dict[str, Any]
    training_config: dict[str, Any]
    data_config: dict[str, Any]
    training_history: list[dict[str, float]]
    clustering: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    training_state: dict[str, Any] | None = None

    def model(self):
        from choice2vec.model import Choice2Vec

        return Choice2Vec(**self.model_config)

    @property
    def representations(self) -> np.ndarray | None:
        return self.arrays.get("representations_256d")

    @property
    def best_algorithm(self) -> str | None:
        return self.clustering.get("best_algorithm")


def load(path: str | os.PathLike, *, trust_pickle: bool = False, results: bool = True, state: bool = False) -> Checkpoint:
    """Load ``checkpoint_epoch_XXXXXX/`` (verified against its manifest).

    The old script's ``model_weights.pkl`` / ``clustering_results.pkl`` are read only with
    ``trust_pickle=True`` (a pickle can run code when loaded).
    """
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"no checkpoint directory at {path}; `c2v analyze --list` shows the runs")
    if not (path / "manifest.json").exists() and (path / LEGACY_WEIGHTS).exists():
        return _load_legacy(path, trust_pickle)
    wanted = [WEIGHTS, META] + ([RESULTS_JSON, RESULTS_NPZ] if results else []) + ([STATE] if state else [])
    loaded = core_load(path, files=wanted, framework="numpy")
    meta = loaded.files[META]
    return Checkpoint(
        path=path,
        epoch=int(meta["epoch"]),
        params=loaded.files[WEIGHTS],
        model_config=meta["model_config"],
        training_config=meta["training_config"],
        data_config=meta["data_config"],
        training_history=meta["training_history"],
        clustering=loaded.files.get(RESULTS_JSON, {}),
        arrays=loaded.files.get(RESULTS_NPZ, {}),
        training_state=loaded.files.get(STATE),
    )


def _load_legacy(path: Path, trust_pickle: bool) -> Checkpoint:
    from trainer_core import load_file

    weights = load_file(path / LEGACY_WEIGHTS, trust_pickle=trust_pickle)  # refuses unless trust_pickle
    results = load_file(path / LEGACY_RESULTS, trust_pickle=trust_pickle) if (path / LEGACY_RESULTS).exists() else {}
    arrays = {k: np.asarray(v) for k, v in results.items() if k in ("representations_256d", "true_labels_binary", "true_states")}
    return Checkpoint(
        path=path,
        epoch=int(weights.get("epoch", 0)),
        params=weights.get("params"),
        model_config=dict(weights.get("model_config", {})),
        training_config=dict(weights.get("training_config", {})),
        data_config=dict(weights.get("data_config", {})),
        training_history=list(weights.get("training_history", [])),
        clustering={"algorithms": results.get("clustering_results", {})},
        arrays=arrays,
    )
