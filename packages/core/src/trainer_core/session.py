"""The start of every training run, shared by the trainers: where it writes, its config hash,
seeding, and restoring the state it resumes from."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from trainer_core.checkpoint import CheckpointManager, find_resume_point, load_checkpoint
from trainer_core.config import config_hash
from trainer_core.errors import UsageError
from trainer_core.layouts import CheckpointInfo
from trainer_core.run import Run
from trainer_core.training_state import restore_training_state


def open_run(config: Any, *, package: str, layout: str, run_dir: str | Path | None = None, resume: str | Path | None = None) -> Run:
    """The run to train: ``run_dir`` for a fresh one, or the run a checkpoint (or run dir) belongs to."""
    checkpoint = None
    if resume is not None:
        checkpoint, run_dir = find_resume_point(resume, layout)
    if run_dir is None:
        raise UsageError("give an output directory (--output) or a run to resume (--resume)")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return Run(
        run_dir=run_dir,
        package=package,
        config=config,
        config_hash=config_hash(config),
        resumed_from=str(checkpoint) if checkpoint else None,
    )


def seed_everything(seed: int) -> None:
    """Seed python, numpy's global generator and (if loaded) torch."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def restore_run(
    run: Run,
    model: Any,
    optimizer: Any = None,
    scheduler: Any = None,
    *,
    manager: CheckpointManager | None = None,
    trust_pickle: bool = False,
) -> tuple[dict[str, Any], CheckpointInfo]:
    """Load ``run.resumed_from`` into the model/optimizer/scheduler and the RNGs.

    Refuses a checkpoint trained with another config (the result would not be the same run) and
    protects the checkpoint from retention. Returns (position, checkpoint info).
    """
    loaded = load_checkpoint(run.resumed_from, trust_pickle=trust_pickle)
    if loaded.info.config_hash != run.config_hash:
        raise UsageError(
            f"{run.resumed_from} was trained with another config (hash {str(loaded.info.config_hash)[:12]} vs {str(run.config_hash)[:12]}); "
            "resume with the same config, or start a new run"
        )
    position = restore_training_state(loaded.files, model, optimizer, scheduler)
    if manager is not None:
        manager.protect(run.resumed_from)
    return position, loaded.info
