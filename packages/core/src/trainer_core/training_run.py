"""The run object every trainer runs through: directory, seeding, checkpoints, metrics, hooks.

A trainer builds its model, then opens a :class:`TrainingRun` with its validated config, the
layout object its plugin registers and a state adapter
(:class:`~trainer_core.training_state.TorchState`, :class:`~trainer_core.jax_state.JaxState`
or its own), and trains inside ``with run:``::

    run = TrainingRun(config, layout=LAYOUT, state=TorchState(model, optimizer), run_dir=out, resume=resume)
    with run:
        step = run.position.get("step", 0)
        for ...:
            run.log({"loss": loss}, step=step, epoch=epoch)
        run.save(step=step, epoch=epoch, metrics=val, position={"step": step, "epoch": epoch})

The run guarantees, for every package alike: the run directory exists (fresh, or the one the
resumed checkpoint belongs to); seeds are set; the checkpoint manager follows the layout
(package, kind, version, folder, names) with the config hash and the model's name and parameter
count in every manifest; a resume refuses another config, restores the full state, protects its
source from retention and drops metrics logged after it; ``metrics.jsonl`` plus every registered
sink (TensorBoard when installed) receive each record; ``on_resume``, ``on_train_start``,
``before_save``/``after_save``, ``visualize_epoch_end``/``visualize_checkpoint``,
``on_train_error`` and ``on_train_end`` fire at their moment; and an exception still closes the
writer and the sinks.
"""

from __future__ import annotations

import math
import random
import sys
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from trainer_core import storage
from trainer_core.checkpoint import CheckpointManager, find_resume_point, list_committed, load_checkpoint
from trainer_core.checkpoint.retention import RetentionPolicy
from trainer_core.config import config_changes, config_hash, config_json, resume_free_keys, write_resolved_config
from trainer_core.distributed import World, current_world, rank_file
from trainer_core.errors import DivergedError, UsageError
from trainer_core.layouts import CheckpointInfo, CheckpointLayout
from trainer_core.metrics import MetricsLogger, build_sinks
from trainer_core.models import parameter_count
from trainer_core.run import Run
from trainer_core.run_lock import RunDirLock
from trainer_core.visuals import VisualizationEvent

CONFIG_FILE = "config.json"


class StateAdapter(Protocol):
    """What a run needs from a trainer's state: its files at a position, and the way back."""

    framework: str

    def files(self, position: dict[str, Any], *, single_file: str | None = None, payload: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def restore(self, files: dict[str, Any]) -> dict[str, Any]: ...

    def parameter_count(self) -> int: ...


def resize_notice(name: str, saved: Any, now: int, position: Mapping[str, Any]) -> str:
    """What a resume at another world size tells the user (the data order is the same)."""
    where = ", ".join(f"{k} {position[k]}" for k in ("epoch", "batch", "step") if k in position)
    return (f"resuming {name} (written by {saved} rank(s)) with {now}: training continues the same global sample "
            f"order{' from ' + where if where else ''}; ranks the checkpoint did not have start from rank 0's random "
            "state, so the result matches the original world size within float tolerance, not bit for bit")  # fmt: skip


class _SilentHook:
    def __call__(self, **kwargs: Any) -> list[Any]:
        return []

    def get_hookimpls(self) -> list[Any]:
        return []


class _SilentHooks:
    """The hooks of ranks other than 0: the run record, sinks and pictures belong to rank 0."""

    def __getattr__(self, name: str) -> _SilentHook:
        return _SilentHook()


class _RankLogger:
    """The metrics logger of ranks other than 0: records are returned, nothing is written."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []

    def log(self, values: Mapping[str, Any], *, step: int, epoch: int | None = None, split: str = "train") -> dict[str, Any]:
        return {"step": int(step), "epoch": epoch, "split": split, **{k: v.item() if hasattr(v, "item") else v for k, v in values.items()}}

    def resume(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def remote_mirror_path(url: str) -> Path:
    """The local folder that stands for run ``url``: ``$TRAINER_CORE_CACHE`` (default
    ``~/.cache/trainer-core``) ``/runs/<url>``."""
    import hashlib
    import os
    import re

    cache = Path(os.environ.get("TRAINER_CORE_CACHE") or Path.home() / ".cache" / "trainer-core")
    return cache / "runs" / (re.sub(r"[^A-Za-z0-9._-]+", "_", url)[-80:] + "-" + hashlib.sha256(url.encode()).hexdigest()[:8])


def fill_mirror(mirror: Path, url: str, *, resume: bool) -> None:
    """Under the mirror's lock: empty it, then (resuming) copy the run's files from ``url``."""
    import shutil

    from trainer_core.checkpoint.remote import download_tree
    from trainer_core.run_lock import LOCK_NAME

    for entry in mirror.iterdir():
        if entry.name != LOCK_NAME:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    if resume:
        download_tree(url, str(mirror))


def _refuse_other_runs(folder: Any, layout: str, run_dir: Any) -> None:
    """A fresh run never writes among another run's checkpoints (its retention would rank them)."""
    existing = list_committed(folder, layout)
    if existing:
        newest = existing[-1]
        raise UsageError(
            f"{run_dir} already holds {len(existing)} checkpoint(s) of another run (newest {storage.basename(newest.path)}, step {newest.step}); "
            f"resume it with --resume {run_dir}, or give a new output directory"
        )


def seed_everything(seed: int) -> None:
    """Seed python, numpy's global generator and (if loaded) torch."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


class TrainingRun:
    """One training run of any package (see the module docstring).

    ``run_dir`` is written exactly (a fresh run); ``resume`` is a checkpoint or a run directory
    (its newest committed checkpoint) and implies the run directory. ``state`` may be None for a
    trainer that saves only its own ``files``. ``sink_options`` are keyword arguments per sink
    name (e.g. ``{"console": {...}}``); ``disabled_sinks`` are skipped. ``seed`` defaults to
    ``config.seed`` when the config has one. ``checkpoint_dir`` puts the checkpoints somewhere
    other than ``run_dir/layout.checkpoint_dir`` (a folder shared by several runs, like arc's).
    ``world`` overrides the world found in torchrun's environment. ``figure``: at the end, write the
    run's curves to ``run_dir/metrics.png`` (what ``core plot`` draws; needs ``trainer-core[plot]``,
    skipped without matplotlib; a figure that cannot be drawn never fails the run).
    """

    def __init__(
        self,
        config: Any,
        *,
        layout: CheckpointLayout,
        state: StateAdapter | None = None,
        run_dir: str | Path | None = None,
        resume: str | Path | None = None,
        pm: Any = None,
        retention: RetentionPolicy | None = None,
        async_save: bool = False,
        sink_options: Mapping[str, Mapping[str, Any]] | None = None,
        disabled_sinks: tuple[str, ...] = (),
        seed: int | None = None,
        trust_pickle: bool = False,
        write_config: bool = True,
        checkpoint_dir: str | Path | None = None,
        world: World | None = None,
        figure: bool = True,
    ) -> None:
        from trainer_core.plugins import collect_registry, get_plugin_manager

        self.pm = pm if pm is not None else get_plugin_manager(warn=False)
        self.registry = collect_registry(self.pm)
        # under torchrun: this rank; rank 0 alone fires hooks, logs and locks. ``world=World()`` makes a
        # run of rank 0 alone inside a multi-rank job (a stage the other ranks wait for)
        self.world = world if world is not None else current_world()
        self.hooks = self.pm.hook if self.world.main else _SilentHooks()
        self.layout, self.state, self.config = layout, state, config
        self.figure = figure
        checkpoint = None
        if resume is not None:
            checkpoint, run_dir = find_resume_point(resume, layout.name, layout.checkpoint_dir)
        if run_dir is None:
            raise UsageError("give an output directory (--output) or a run to resume (--resume)")
        # a run on object storage: checkpoints go to the URL; metrics, config and logs are written
        # to a local mirror and uploaded after every commit and at the end (downloaded on resume)
        self.remote_dir = str(run_dir).rstrip("/") if storage.is_url(run_dir) else None
        self.run_dir = remote_mirror_path(self.remote_dir) if self.remote_dir else Path(storage.local_path(run_dir)).absolute()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = RunDirLock.acquire(self.run_dir) if self.world.main else None
        try:
            if self.remote_dir is not None and self.world.main:
                fill_mirror(self.run_dir, self.remote_dir, resume=checkpoint is not None)
            self._open(config=config, layout=layout, checkpoint=checkpoint, retention=retention, async_save=async_save,
                       sink_options=sink_options, disabled_sinks=disabled_sinks, seed=seed, trust_pickle=trust_pickle,
                       write_config=write_config, checkpoint_dir=checkpoint_dir)  # fmt: skip
        except BaseException:
            self._release()
            raise

    def _open(self, *, config: Any, layout: CheckpointLayout, checkpoint: Path | None, retention: RetentionPolicy | None,
              async_save: bool, sink_options: Any, disabled_sinks: tuple[str, ...], seed: int | None, trust_pickle: bool,
              write_config: bool, checkpoint_dir: str | Path | None) -> None:  # fmt: skip
        """Everything after the run directory is locked (a failure here releases the lock)."""
        self.config_hash = config_hash(config) if config is not None else None
        self.info = Run(
            run_dir=self.run_dir,
            package=layout.package,
            config=config,
            config_hash=self.config_hash,
            resumed_from=str(checkpoint) if checkpoint else None,
            run_id=uuid.uuid4().hex[:12],
        )
        seed = seed if seed is not None else getattr(config, "seed", None)
        if seed is not None:
            seed_everything(int(seed))
        shared_folder = checkpoint_dir is not None
        if checkpoint_dir is None:
            base: Any = self.remote_dir or self.run_dir
            checkpoint_dir = (storage.join(base, layout.checkpoint_dir) if self.remote_dir else base / layout.checkpoint_dir) if layout.checkpoint_dir else base
        if checkpoint is None and not shared_folder:
            _refuse_other_runs(checkpoint_dir, layout.name, self.remote_dir or self.run_dir)
        self.manager = CheckpointManager(
            checkpoint_dir,
            retention=retention,
            async_save=async_save,
            hooks=self.hooks,
            run=self.info,
            run_id=self.info.run_id,
            world=self.world,
            **layout.manager_options(),
        )
        if self.remote_dir is not None and self.world.main:
            self.manager.on_commit = lambda info: self.sync()
        self.status = "completed"
        self.position: dict[str, Any] = {}
        self.resumed: CheckpointInfo | None = None
        self.resume_changes: dict[str, tuple[Any, Any]] = {}  # what a resume changed (e.g. epochs 10 -> 30)
        self.loaded_files: dict[str, Any] = {}
        self._started = self._finished = False
        if checkpoint is not None:
            self._load(checkpoint, trust_pickle)
        if write_config and config is not None and self.world.main:
            write_resolved_config(config, self.run_dir)
        if self.world.main:
            self.logger = MetricsLogger(self.run_dir, build_sinks(self.registry.sinks, self.run_dir, sink_options, disabled_sinks))
        else:
            self.logger = _RankLogger()
        if self.resumed is not None:
            self.logger.resume(int(self.resumed.step or 0))
            self.hooks.on_resume(run=self.info, checkpoint=self.resumed)

    # --- resume ---------------------------------------------------------------------------
    def restore(self, checkpoint: str | Path, *, trust_pickle: bool = False) -> dict[str, Any]:
        """Resume from ``checkpoint`` after the run was opened (a session told later what to
        continue); same checks and hooks as ``resume=``. Returns the restored position."""
        checkpoint = checkpoint if storage.is_url(checkpoint) else Path(checkpoint).absolute()
        self._load(checkpoint, trust_pickle)
        self.info.resumed_from = str(checkpoint)
        self.logger.resume(int(self.resumed.step or 0))
        self.hooks.on_resume(run=self.info, checkpoint=self.resumed)
        return self.position

    def _load(self, checkpoint: Path, trust_pickle: bool) -> None:
        loaded = load_checkpoint(checkpoint, trust_pickle=trust_pickle, framework="numpy" if self._framework() == "jax" else "pt")
        if loaded.info.layout != self.layout.name:
            raise UsageError(f"{checkpoint} is a {loaded.info.layout} checkpoint, not {self.layout.name}; give one of this trainer's checkpoints")
        if loaded.info.config_hash != self.config_hash:
            self.resume_changes = self._allowed_changes(checkpoint, loaded.files, loaded.info.config_hash)
        if self.state is not None:
            self.position = self.state.restore(loaded.files)
            if self.world.rank and hasattr(self.state, "restore_rank"):  # this rank's own RNGs, if it had a part
                self.state.restore_rank(loaded.files, self.world.rank)
        saved_world = loaded.info.extra.get("world_size", 1)
        if saved_world != self.world.size and self.world.main:
            print(resize_notice(storage.basename(str(checkpoint)), saved_world, self.world.size, self.position), file=sys.stderr)
        self.loaded_files = loaded.files
        self.resumed = loaded.info
        resumed_id = loaded.info.extra.get("run_id")
        if isinstance(resumed_id, str) and resumed_id:  # a resume continues the same run (and its retention)
            self.info.run_id = self.manager.run_id = resumed_id
        self.manager.protect(checkpoint)

    def _allowed_changes(self, checkpoint: Path, files: dict[str, Any], recorded_hash: Any) -> dict[str, tuple[Any, Any]]:
        """A resume under another config: allowed when only the length of training or paths changed
        (train longer); otherwise one line naming the keys that would change what was trained."""
        recorded = files.get(CONFIG_FILE)
        if recorded is None and len(files) == 1:
            (single,) = files.values()
            recorded = single.get("config") if isinstance(single, dict) else None
        if not isinstance(recorded, dict) or self.config is None:
            raise UsageError(
                f"{checkpoint} was trained with another config (hash {str(recorded_hash)[:12]} vs {str(self.config_hash)[:12]}); "
                "resume with the same config, or start a new run"
            )
        changes = config_changes(recorded, config_json(self.config))
        free = resume_free_keys(self.config)
        refused = {k: v for k, v in changes.items() if k not in free}
        if refused:
            shown = "; ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in list(refused.items())[:4])
            raise UsageError(
                f"{checkpoint} was trained with another config ({shown}); these change what was already trained. "
                f"Resume with the same values (only {', '.join(free)} may change), or start a new run"
            )
        return changes

    def _framework(self) -> str:
        return getattr(self.state, "framework", "torch")

    @property
    def location(self) -> str:
        """Where the run lives, as the user named it: its URL on object storage, else its folder."""
        return self.remote_dir or str(self.run_dir)

    @property
    def resumed_from(self) -> str | None:
        return self.info.resumed_from

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Fire ``on_train_start`` (once). ``with run:`` calls it; a long-lived session may too."""
        if not self._started:
            self._started = True
            self.hooks.on_train_start(run=self.info)

    def finish(self, error: BaseException | None = None) -> None:
        """End the run (once): ``on_train_error`` for ``error``, wait for the writer, close the
        sinks, ``on_train_end`` with :attr:`status`."""
        if self._finished:
            return
        self._finished = True
        if error is not None:
            self.status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            self.hooks.on_train_error(run=self.info, error=error)
        try:
            self.manager.close()
        finally:
            try:
                self.logger.close()
                if self.figure and self.world.main:
                    self.write_figure()
                self.hooks.on_train_end(run=self.info, status=self.status)
                if self.remote_dir is not None and self.world.main:
                    self.sync()
            finally:
                self._release()

    def write_figure(self) -> Path | None:
        """The run's curves as ``run_dir/metrics.png`` (one panel per metric, train and validation
        apart); None when nothing numeric was logged or matplotlib is not installed. A failure to
        draw is one warning line: the run's checkpoints and metrics matter more than its picture."""
        from trainer_core.plotting import FIGURE_FILE, METRICS_FILE, plot_runs

        metrics = self.run_dir / METRICS_FILE
        if not metrics.is_file() or metrics.stat().st_size == 0:
            return None
        try:
            return Path(plot_runs([self.run_dir], self.run_dir / FIGURE_FILE)["output"])
        except UsageError:  # matplotlib not installed, or nothing numeric logged
            return None
        except Exception as exc:  # noqa: BLE001 - a picture never fails a run
            print(f"warning: the run's figure {self.run_dir / FIGURE_FILE} was not written: {type(exc).__name__}: {exc}", file=sys.stderr)
            return None

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def sync(self) -> None:
        """A run on object storage: upload the local mirror's files (metrics, config, logs)."""
        if self.remote_dir is not None:
            from trainer_core.checkpoint.remote import upload_tree

            upload_tree(str(self.run_dir), self.remote_dir, skip=(self.layout.checkpoint_dir,) if self.layout.checkpoint_dir else ())

    def __enter__(self) -> TrainingRun:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)

    # --- metrics --------------------------------------------------------------------------
    def log(self, values: Mapping[str, Any], *, step: int, epoch: int | None = None, split: str = "train") -> dict[str, Any]:
        """One record to ``metrics.jsonl`` and every sink.

        A loss (any key with ``loss`` in its name) that is not finite stops the run: training on
        from NaN would only write worthless checkpoints over good ones."""
        record = self.logger.log(values, step=step, epoch=epoch, split=split)
        broken = [k for k, v in record.items() if "loss" in k and isinstance(v, float) and not math.isfinite(v)]
        if broken:
            latest = self.manager.latest()
            kept = f"the last good checkpoint is {latest.path}" if latest else "no checkpoint was written"
            raise DivergedError(
                f"{broken[0]} became {record[broken[0]]} at step {step}; {kept}. Lower the learning rate (or check the data) and start again"
            )
        return record

    # --- checkpoints ----------------------------------------------------------------------
    def save(
        self,
        *,
        step: int,
        epoch: int | None = None,
        metrics: Mapping[str, Any] | None = None,
        position: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        name: str | None = None,
        extra: Mapping[str, Any] | None = None,
        visualization: VisualizationEvent | None = None,
    ) -> CheckpointInfo | Future:
        """Commit a checkpoint of the run's state at ``position`` (default: step and epoch).

        ``files`` are more files of a directory checkpoint; ``payload`` more keys of a single-file
        one. The resolved config goes in (``config.json``, or the ``config`` key), and the
        manifest records the config hash, the model's name and its parameter count. With
        ``visualization``, ``visualize_checkpoint`` fires once the checkpoint is committed.
        """
        layout = self.layout
        name = name or layout.name_format.format(step=step, epoch=epoch if epoch is not None else 0)
        position = dict(position) if position is not None else {"step": int(step), "epoch": epoch}
        resolved = config_json(self.config) if self.config is not None else None
        state_files: dict[str, Any] = {}
        if self.world.multi and not self.world.main:  # a rank's own part: its RNGs and position
            own = getattr(self.state, "rank_state", None)  # a replicated state (JAX's) has no part of its own
            state_files = {rank_file(self.world.rank): own(position)} if own is not None else {}
        elif layout.single_file:
            single = {**({"config": resolved} if resolved is not None else {}), **(payload or {})}
            if self.state is not None:
                state_files = self.state.files(position, single_file=name, payload=single)
            else:
                state_files = {name: single}
        else:
            if self.state is not None:
                state_files = self.state.files(position)
            if resolved is not None:
                state_files[CONFIG_FILE] = resolved
            state_files.update(files or {})
        recorded = dict(extra or {})
        if self.state is not None:
            recorded.setdefault("model", {"name": layout.model or layout.name, "parameters": self.state.parameter_count()})
        result = self.manager.save(state_files, step=step, epoch=epoch, metrics=metrics, config_hash=self.config_hash, name=name, extra=recorded)
        if visualization is not None and self.hooks.visualize_checkpoint.get_hookimpls():
            notify = lambda info: self.hooks.visualize_checkpoint(event=visualization, checkpoint=info)  # noqa: E731
            if isinstance(result, Future):
                result.add_done_callback(lambda f: f.exception() is None and notify(f.result()))
            else:
                notify(result)
        return result

    def export(
        self,
        directory: str | Path,
        files: Mapping[str, Any],
        *,
        step: int,
        epoch: int | None = None,
        name: str,
        metrics: Mapping[str, Any] | None = None,
        layout: CheckpointLayout | None = None,
        model: Any = None,
    ) -> CheckpointInfo | None:
        """Commit ``files`` as one checkpoint outside the run's series (a final model, an exported
        encoder) with this run's config hash and hooks, and ``model``'s name and size recorded.
        Under torchrun rank 0 alone writes it (the state is replicated); other ranks get None."""
        if not self.world.main:
            return None
        layout = layout or self.layout
        extra = {"model": {"name": layout.model or layout.name, "parameters": parameter_count(model)}} if model is not None else None
        return commit_checkpoint(layout, directory, files, step=step, epoch=epoch, metrics=metrics, name=name,
                                 config_hash=self.config_hash, extra=extra, pm=self.pm)  # fmt: skip

    def wait(self) -> None:
        """Block until the save in flight is committed (asynchronous saving)."""
        self.manager.wait()

    def checkpoints(self) -> list[CheckpointInfo]:
        return self.manager.checkpoints()

    def latest(self) -> CheckpointInfo | None:
        return self.manager.latest()

    # --- visualization --------------------------------------------------------------------
    @property
    def wants_visuals(self) -> bool:
        """True when a plugin draws epoch-end or checkpoint pictures (build the event only then)."""
        hook = self.hooks
        return bool(hook.visualize_epoch_end.get_hookimpls() or hook.visualize_checkpoint.get_hookimpls())

    def visualize_epoch_end(self, event: VisualizationEvent) -> None:
        self.hooks.visualize_epoch_end(event=event)

    def visualize_checkpoint(self, event: VisualizationEvent, checkpoint: CheckpointInfo) -> None:
        """Fire ``visualize_checkpoint`` for a checkpoint committed earlier (e.g. the last one of
        the run, once training has ended); ``save(..., visualization=...)`` fires it at commit."""
        self.hooks.visualize_checkpoint(event=event, checkpoint=checkpoint)


def commit_checkpoint(
    layout: CheckpointLayout,
    directory: str | Path,
    state: Mapping[str, Any],
    *,
    step: int,
    epoch: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    name: str | None = None,
    config_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
    pm: Any = None,
) -> CheckpointInfo:
    """One checkpoint outside a training loop (an exported encoder, a final model), committed
    with the same protocol, layout fields and save hooks as a run's."""
    from trainer_core.plugins import get_plugin_manager

    pm = pm if pm is not None else get_plugin_manager(warn=False)
    with CheckpointManager(directory, hooks=pm.hook, **layout.manager_options()) as manager:
        return manager.save(state, step=step, epoch=epoch, metrics=metrics, config_hash=config_hash, name=name, extra=extra)
