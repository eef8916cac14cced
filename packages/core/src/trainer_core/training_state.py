"""Full training state for bit-identical resume: RNGs, model, optimizer, scheduler, position.

Everything is stored as tensors and plain values so that it reads back with
``torch.load(weights_only=True)``. torch is imported inside functions only.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import numpy as np

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"
TORCH_MODEL_FILE, TORCH_STATE_FILE = MODEL_FILE, STATE_FILE  # the names under which trainer_core exports them


def capture_rng_state(jax_key: Any = None) -> dict[str, Any]:
    """Python, numpy (global), torch CPU and CUDA generators, plus a JAX key if given.

    torch's generators are included when the process has imported torch; without torch the
    result is plain JSON (a JAX trainer can save it as ``rng_state.json``).
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
    }
    if "torch" in sys.modules:
        import torch

        state["torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
    if jax_key is not None:
        import jax

        state["jax_key"] = np.asarray(jax.random.key_data(jax_key) if _is_typed_key(jax_key) else jax_key).tolist()
    return state


def _is_typed_key(key: Any) -> bool:
    import jax

    return hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def restore_rng_state(state: dict[str, Any]) -> Any:
    """Restore every generator captured by :func:`capture_rng_state`; returns the JAX key or None."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    if "jax_key" in state:
        return np.asarray(state["jax_key"], dtype=np.uint32)
    return None


def epoch_permutation(num_items: int, epoch: int, seed: int) -> Any:
    """The data order of ``epoch``: a pure function of (seed, epoch), so resume needs no state."""
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=generator)


SCHEDULE_LENGTH = frozenset({"T_max", "total_steps", "_schedule_phases"})  # what a longer run recomputes


class TorchState:
    """The state adapter of torch trainers: model, optimizer, scheduler, RNGs and extra generators.

    Core's torch training-state format. In a directory checkpoint: ``model.safetensors`` (weights)
    and ``trainer_state.pt`` (optimizer, scheduler, RNGs, position). In a single-file checkpoint
    (``<name>.pt``): one dict with ``model_state_dict``, ``optimizer_state_dict``,
    ``scheduler_state_dict`` and ``trainer_state`` (RNGs, position) beside the trainer's own keys.
    Both read back with ``torch.load(weights_only=True)`` / safetensors.
    """

    framework = "torch"

    def __init__(self, model: Any, optimizer: Any = None, scheduler: Any = None, *, generators: dict[str, Any] | None = None) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.generators = dict(generators or {})

    def _trainer_state(self, position: dict[str, Any]) -> dict[str, Any]:
        rng = capture_rng_state()
        if self.generators:
            rng["generators"] = {name: g.get_state() for name, g in self.generators.items()}
        return {"rng": rng, "position": dict(position)}

    def files(self, position: dict[str, Any], *, single_file: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint's files for this state at ``position``."""
        optimizer = self.optimizer.state_dict() if self.optimizer is not None else None
        scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        if single_file is not None:
            return {
                single_file: {
                    **(payload or {}),
                    "model_state_dict": self.model.state_dict(),
                    "optimizer_state_dict": optimizer,
                    "scheduler_state_dict": scheduler,
                    "trainer_state": self._trainer_state(position),
                }
            }
        state = {"optimizer": optimizer, "scheduler": scheduler, **self._trainer_state(position)}
        return {MODEL_FILE: self.model.state_dict(), STATE_FILE: state}

    def rank_state(self, position: dict[str, Any]) -> dict[str, Any]:
        """This rank's own part of a multi-rank checkpoint: its RNG states and position."""
        return self._trainer_state(position)

    def restore_rank(self, files: dict[str, Any], rank: int) -> bool:
        """This rank's RNGs from its part of a multi-rank checkpoint; False when it has none (the
        checkpoint was written by fewer ranks)."""
        from trainer_core.distributed import rank_file

        part = files.get(rank_file(rank))
        if part is None and len(files) == 1:  # a single-file checkpoint: the parts ride in its dict
            (single,) = files.values()
            part = (single.get("rank_states") or {}).get(str(rank)) if isinstance(single, dict) else None
        if part is None:
            return False
        restore_rng_state(part["rng"])
        for name, saved in (part["rng"].get("generators") or {}).items():
            if name in self.generators:
                self.generators[name].set_state(saved)
        return True

    def restore(self, files: dict[str, Any]) -> dict[str, Any]:
        """Load everything back from a loaded checkpoint's files; returns the saved position."""
        if MODEL_FILE in files:
            weights, state = files[MODEL_FILE], files[STATE_FILE]
            optimizer, scheduler = state.get("optimizer"), state.get("scheduler")
        else:
            ((_, single),) = files.items()
            weights, state = single["model_state_dict"], single["trainer_state"]
            optimizer, scheduler = single.get("optimizer_state_dict"), single.get("scheduler_state_dict")
        self.model.load_state_dict(weights)
        if self.optimizer is not None and optimizer is not None:
            self.optimizer.load_state_dict(optimizer)
        if self.scheduler is not None and scheduler is not None:
            self._restore_scheduler(scheduler)
        restore_rng_state(state["rng"])
        for name, saved in (state["rng"].get("generators") or {}).items():
            if name in self.generators:
                self.generators[name].set_state(saved)
        return dict(state.get("position") or {})

    def _restore_scheduler(self, saved: dict[str, Any]) -> None:
        """The schedule's progress comes from the checkpoint, its length from the run's config: a
        resume with more epochs (train longer) recomputes the schedule over the new length
        (cosine's T_max, one-cycle's total_steps and phases); an unchanged length changes nothing."""
        fresh = {k: v for k, v in vars(self.scheduler).items() if k in SCHEDULE_LENGTH}
        self.scheduler.load_state_dict(saved)
        changed = [k for k, v in fresh.items() if vars(self.scheduler).get(k) != v]
        for key, value in fresh.items():
            setattr(self.scheduler, key, value)
        closed_form = getattr(self.scheduler, "_get_closed_form_lr", None)
        if changed and closed_form is not None and self.optimizer is not None:  # a recursive schedule (cosine): from its formula
            lrs = closed_form()
            for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr
            self.scheduler._last_lr = list(lrs)

    def parameter_count(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))
