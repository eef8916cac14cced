"""The start of every training run, shared by the trainers: where it writes, its config hash,
seeding, and restoring the state it resumes from."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass
class RunStatus:
    """How a run ended, as ``on_train_end`` receives it; the trainer sets ``early_stopped`` or
    ``interrupted`` itself, the lifecycle sets ``failed``/``interrupted`` on an exception."""

    value: str = "completed"


@contextmanager
def run_lifecycle(pm: Any, run: Run, *closing: Any) -> Iterator[RunStatus]:
    """The hooks around a training loop, in one place.

    Calls ``on_train_start``; on an exception sets the status (``interrupted`` for Ctrl-C, else
    ``failed``), calls ``on_train_error`` and re-raises; in every case closes ``closing`` (checkpoint
    managers, metrics loggers: anything with ``close()``, in order) and then calls ``on_train_end``
    with the status.
    """
    status = RunStatus()
    pm.hook.on_train_start(run=run)
    try:
        yield status
    except BaseException as exc:
        status.value = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        pm.hook.on_train_error(run=run, error=exc)
        raise
    finally:
        try:
            for thing in closing:
                thing.close()
        finally:
            pm.hook.on_train_end(run=run, status=status.value)
