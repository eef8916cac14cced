"""A training session: data, model, optimiser, the loop, status and checkpoint requests.

`arc train` runs one in the foreground; `arc-serve` runs one in a background thread and talks to
it through :meth:`status`, :meth:`request_save` and :meth:`stop` (thread-safe). Checkpoints are
single `.pth` files committed atomically through trainer-core (a temporary sibling, fsync, a
manifest sidecar, then rename), readable with ``torch.load(weights_only=True)``. A save request
snapshots the weights at the end of the current batch; the file is written by trainer-core's
background writer, so training does not wait for the disk.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from arc_comm import games
from arc_comm.config import ArcConfig
from arc_comm.data import NUM_COLORS, load_grids, within_task_split
from arc_comm.layouts import ENCODER_LAYOUT, PACKAGE, SYSTEM_LAYOUT  # noqa: F401 - PACKAGE is read by the server
from arc_comm.model import ARCAutoencoder, ARCEncoder
from trainer_core import (
    RetentionPolicy,
    TorchState,
    TrainerCoreError,
    TrainingRun,
    UsageError,
    allocate_run_dir,
    describe_os_error,
    is_url,
    join_location,
    load_checkpoint,
    location_exists,
    location_name,
    uneven_share_warning,
)

AUTOSAVE_PREFIX = "autosave_"  # periodic saves of `arc train`: only the newest of a run is kept
ARCHITECTURE_FIELDS = (
    "task_type", "bottleneck_type", "embedding_dim", "hidden_dim", "latent_dim", "num_conv_layers", "vocab_size",
    "max_message_length", "max_grid_size",
)  # fmt: skip
ENCODER_FIELDS = ("num_colors", "embedding_dim", "hidden_dim", "latent_dim", "num_conv_layers")


def build_encoder(config: ArcConfig) -> ARCEncoder:
    return ARCEncoder(config.num_colors, config.embedding_dim, config.hidden_dim, config.latent_dim, config.num_conv_layers)


def build_model(config: ArcConfig, num_classes: int | None = None) -> ARCAutoencoder:
    encoder = build_encoder(config)
    return ARCAutoencoder(
        encoder,
        vocab_size=config.vocab_size,
        max_length=config.max_message_length,
        num_colors=config.num_colors,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        max_grid_size=config.max_grid_size,
        bottleneck_type=config.bottleneck_type,
        task_type=config.task_type,
        num_conv_layers=config.num_conv_layers,
        num_classes=num_classes,
    )


CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def checkpoint_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a checkpoint in the checkpoint directory, or None. Matched whole
    (a trailing newline does not slip through), no path separators, no ``..``."""
    if not isinstance(name, str) or not CHECKPOINT_NAME.fullmatch(name) or ".." in name:
        return "use letters, digits, '_', '-' and '.', at most 100 characters, not starting with '.', no '/' or '..' (it is a name in the checkpoint directory)"
    return None


class SaveConflict(UsageError):
    """A save with this name is already requested and not yet written (HTTP 409)."""


def _thinned(steps: list[int], losses: list[float], accuracies: list[float], points: int = 500) -> dict[str, list]:
    """At most ``points`` of the per-batch curves for the dashboard: every k-th batch, and the last."""
    stride = max(1, -(-len(steps) // points))
    keep = list(range(0, len(steps), stride))
    if steps and keep[-1] != len(steps) - 1:
        keep.append(len(steps) - 1)
    return {"steps": [steps[i] for i in keep], "losses": [losses[i] for i in keep], "accuracies": [accuracies[i] for i in keep]}


def _one_line(error: BaseException) -> str:
    return describe_os_error(error) if isinstance(error, OSError) else f"{type(error).__name__}: {error}"


@dataclass
class Status:
    mode: str = "idle"  # idle | training | pretraining | finished | stopped | failed
    epoch: int = 0
    batch: int = 0
    steps: list[int] = field(default_factory=list)  # the global batch of each loss and accuracy below
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)  # epoch, step, val_loss, val_acc at each validation
    val_loss: float | None = None
    val_acc: float | None = None
    started: float | None = None
    finished: float | None = None
    error: str | None = None


class TrainingSession:
    """One training (or pretraining) run: data for the task, model, optimiser, schedule, the loop.

    It runs through core's :class:`~trainer_core.TrainingRun`: checkpoints go to
    ``checkpoint_dir`` (shared by every session, as in the seed), the session's metrics
    (``metrics.jsonl``, TensorBoard) and resolved config to ``checkpoint_dir/runs/run_NNN/``.
    """

    def __init__(self, config: ArcConfig, checkpoint_dir: str | Path = "checkpoints", pm: Any = None, autosave_every: int = 0) -> None:
        self.config = config
        self.autosave_every = autosave_every
        self.checkpoint_dir = checkpoint_dir if is_url(checkpoint_dir) else Path(checkpoint_dir)  # a folder, or s3://...
        torch.manual_seed(config.seed)
        self.train_set, self.held_out = load_grids(
            config.dataset_version, config.max_grid_size, config.min_grid_size, config.max_grids, config.seed,
            pairs=config.use_input_output_pairs,
        )  # fmt: skip
        if config.task_type == "puzzle_classification":  # the evaluation split's tasks are other tasks
            self.train_set, self.held_out = within_task_split(self.train_set, config.classification_holdout, config.seed)
        if len(self.train_set) < 2 or len(self.held_out) < 2:
            raise UsageError(
                f"max_grids={config.max_grids} leaves {len(self.train_set)} training and {len(self.held_out)} held-out grids for "
                f"{config.task_type}; both need at least 2: raise max_grids (40 or more) or leave it unset"
            )
        self.train_grids = torch.from_numpy(self.train_set.grids)
        self.val_grids = torch.from_numpy(self.held_out.grids)
        self.train_labels = torch.from_numpy(self.train_set.task_index)
        self.val_labels = torch.from_numpy(self.held_out.task_index)
        num_classes = len(self.train_set.task_ids) if config.task_type == "puzzle_classification" else None
        self.model = build_model(config, num_classes)
        if config.pretrained_encoder:
            self.load_encoder(config.pretrained_encoder)
        self.options = games.StepOptions(config.temperature, config.diversity_weight, config.communication_method, config.entropy_weight)
        self._new_optimizer(config.learning_rate, config.lr_schedule)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.pm = pm
        self.run_record = TrainingRun(
            config, layout=SYSTEM_LAYOUT, state=self._state(), run_dir=allocate_run_dir(join_location(self.checkpoint_dir, "runs")),
            checkpoint_dir=self.checkpoint_dir, async_save=True, disabled_sinks=("console",), pm=pm, seed=config.seed,
            retention=RetentionPolicy(keep_last=1, pattern=f"{AUTOSAVE_PREFIX}*.pth"),
        )  # fmt: skip
        self.world = self.run_record.world  # under torchrun (`arc train`): each rank plays its share of every batch
        if self.world.multi and config.batch_size < self.world.size:
            raise UsageError(f"batch_size {config.batch_size} is smaller than the {self.world.size} ranks; give each rank a game at least")
        if (warning := uneven_share_warning(config.batch_size, self.world)) and self.world.main:
            print(warning, file=sys.stderr)
        self.state = Status()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._saves: list[tuple[str, bool]] = []
        self._in_flight: set[str] = set()  # names requested and not yet committed or failed
        self.save_log: list[dict[str, Any]] = []  # every requested save: name, state (requested/written/failed), error
        self._resume_batch = 0
        self._examples: list[dict[str, Any]] | None = None

    def _state(self) -> TorchState:
        return TorchState(self.model, self.optimizer, self.scheduler, generators={"generator": self.generator})

    def _new_optimizer(self, lr: float, schedule: str) -> None:
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        total = self.config.epochs * self.config.batches_per_epoch
        self.scheduler = None
        if schedule == "onecycle" and total >= 4:  # a 10% warm-up of at least two batches
            warmup = max(0.1, 2.0 / total)
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=lr, total_steps=total, pct_start=warmup)
        if hasattr(self, "run_record"):
            self.run_record.state = self._state()

    # --- control (any thread) ---------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            s = self.state
            return {
                "mode": s.mode,
                "epoch": s.epoch,
                "batch": s.batch,
                **_thinned(s.steps, s.losses, s.accuracies),
                "validations": [dict(v) for v in s.validations],
                "setup": self.setup(),
                "val_loss": s.val_loss,
                "val_acc": s.val_acc,
                "elapsed": ((s.finished or time.time()) - s.started) if s.started else 0.0,
                "error": s.error,
                "saves": [dict(entry) for entry in self.save_log[-20:]],
            }

    def setup(self) -> dict[str, Any]:
        """What the run plays, for the dashboard: the task, the message channel and what each
        accuracy is measured against (training and validation play different games)."""
        c = self.config
        val_distractors = min(c.num_distractors, len(self.val_grids) - 1)
        if self.state.mode == "pretraining":
            train_label, val_label = f"pretraining accuracy ({c.pretrain_task})", f"validation accuracy ({c.pretrain_task}, unseen tasks)"
        elif c.task_type == "selection":
            opponents = c.batch_size - 1 if c.in_batch_negatives else c.num_distractors
            train_label = f"training accuracy (1 of {opponents + 1}: {opponents} distractors)"
            val_label = f"validation accuracy (1 of {val_distractors + 1}: {val_distractors} distractors, held-out grids)"
        elif c.task_type == "reconstruction":
            train_label, val_label = "training cell accuracy", "validation cell accuracy (held-out grids)"
        else:
            train_label, val_label = "training task accuracy", "validation task accuracy (held-out grids of the same tasks)"
        bonus = c.bottleneck_type == "communication" and c.diversity_weight > 0 and self.state.mode != "pretraining"
        loss_label = f"training loss (per batch, minus {c.diversity_weight:g} x symbol entropy)" if bonus else "training loss (per batch)"
        return {
            "train_loss_label": loss_label,
            "task_type": c.task_type,
            "bottleneck_type": c.bottleneck_type,
            "num_distractors": c.num_distractors,
            "val_distractors": val_distractors,
            "in_batch_negatives": c.in_batch_negatives,
            "batch_size": c.batch_size,
            "max_message_length": c.max_message_length,
            "vocab_size": c.vocab_size,
            "epochs": c.pretrain_epochs if self.state.mode == "pretraining" else c.epochs,
            "batches_per_epoch": c.batches_per_epoch,
            "train_accuracy_label": train_label,
            "val_accuracy_label": val_label,
        }

    def stop(self) -> None:
        self._stop.set()

    def request_save(self, name: str, overwrite: bool = False) -> None:
        """Queue a save at the end of the current batch (or of the run). A name already requested
        and not yet written raises :class:`SaveConflict`."""
        with self._lock:
            if name in self._in_flight:
                raise SaveConflict(f"a save named {name!r} is already in progress; wait for it or choose another name")
            self._in_flight.add(name)
            self.save_log.append({"name": name, "state": "requested", "error": None})
            self._saves.append((name, overwrite))

    def _save_outcome(self, name: str, error: BaseException | None) -> None:
        with self._lock:
            self._in_flight.discard(name)
            for entry in reversed(self.save_log):
                if entry["name"] == name and entry["state"] == "requested":
                    entry.update(state="failed" if error else "written", error=_one_line(error) if error else None)
                    break

    def _take_requested_saves(self) -> None:
        """Write what was requested (from the training thread): a failed save is reported in the
        status, the previous checkpoints stay, and training goes on."""
        with self._lock:
            saves, self._saves = self._saves, []
        for name, overwrite in saves:
            try:
                result = self._save(name, overwrite)
            except (TrainerCoreError, OSError) as exc:
                self._save_outcome(name, exc)
                continue
            if isinstance(result, Future):
                result.add_done_callback(lambda f, name=name: self._save_outcome(name, f.exception()))
            else:
                self._save_outcome(name, None)

    # --- loading --------------------------------------------------------------------------------
    def load(self, path: str | Path, *, fine_tune_lr: float | None = None) -> int:
        """Resume from a system checkpoint (optimizer, schedule and random state too: the run goes
        on from the batch after the one saved), or fine-tune: its weights, a fresh optimizer at a
        constant ``fine_tune_lr``, counting from epoch 0. Returns the epoch to continue in."""
        if fine_tune_lr is not None:
            ckpt = self._read(path, SYSTEM_LAYOUT.name)
            wrong = [f"{k} {ckpt.get(k)} != {getattr(self.config, k)}" for k in ARCHITECTURE_FIELDS if ckpt.get(k) != getattr(self.config, k)]
            if wrong:
                raise UsageError(f"{path} has another architecture ({'; '.join(wrong)}); fine-tune with the checkpoint's settings")
            try:
                self.model.load_state_dict(ckpt["model_state_dict"])
            except (RuntimeError, KeyError) as exc:
                raise UsageError(f"{path} does not fit this model ({str(exc).splitlines()[0]}); fine-tune with the checkpoint's settings") from None
            self._new_optimizer(fine_tune_lr, "constant")
            return 0
        position = self.run_record.restore(path)
        ckpt = self.run_record.loaded_files[location_name(path)]
        with self._lock:
            self.state.epoch, self.state.batch = int(position["epoch"]), int(position["batch"])
            self.state.val_loss, self.state.val_acc = ckpt.get("val_loss"), ckpt.get("val_acc")
        self._resume_batch = int(position["batch"])
        return int(position["epoch"])

    @staticmethod
    def _read(path: str | Path, layout: str) -> dict[str, Any]:
        loaded = load_checkpoint(path)
        if loaded.info.layout != layout:
            raise UsageError(f"{path} is a {loaded.info.layout} checkpoint, not {layout}; give a checkpoint of the right kind")
        return loaded.files[location_name(path)]

    def load_encoder(self, path: str | Path) -> None:
        """Initialise the encoder from ``pretrained_encoder_<task>.pth`` (its architecture must match)."""
        ckpt = self._read(path, ENCODER_LAYOUT.name)
        wrong = [f"{k} {ckpt.get(k)} != {getattr(self.config, k)}" for k in ENCODER_FIELDS if ckpt.get(k) != getattr(self.config, k)]
        if wrong:
            raise UsageError(f"{path}: pretrained encoder does not fit this config ({'; '.join(wrong)}); use the same encoder settings")
        self.model.encoder.load_state_dict(ckpt["encoder_state_dict"])

    # --- the loops ------------------------------------------------------------------------------
    def _train_step(self):
        c = self.config
        world = self.world if self.world.multi else None
        if c.task_type == "selection":
            distractors = None if c.in_batch_negatives else c.num_distractors
            return games.selection_step(self.model, self.train_grids, c.batch_size, distractors, self.options, self.generator, world)
        if c.task_type == "reconstruction":
            return games.reconstruction_step(self.model, self.train_grids, c.batch_size, self.options, self.generator, world)
        return games.classification_step(self.model, self.train_grids, self.train_labels, c.batch_size, self.options, self.generator, world)

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics of the configured task (val_acc: selection accuracy at num_distractors,
        cell accuracy for reconstruction, task accuracy for classification)."""
        c = self.config
        if c.task_type == "selection":
            return games.evaluate_selection(self.model, self.val_grids, c.val_grids, min(c.num_distractors, len(self.val_grids) - 1))
        if c.task_type == "reconstruction":
            return games.evaluate_reconstruction(self.model, self.val_grids)
        return games.evaluate_classification(self.model, self.val_grids, self.val_labels)

    def run(self, start_epoch: int = 0, echo=None) -> dict[str, Any]:
        """Train to ``epochs``; ``start_epoch`` comes from :meth:`load` (0 for a new run)."""
        config = self.config
        if self._resume_batch >= config.batches_per_epoch:  # saved after its epoch's last batch: that epoch is done
            self._resume_batch = 0
        first_epoch = max(start_epoch, 1) if self._resume_batch else start_epoch + 1
        self._refresh_examples()
        with self._phase("training"):
            for epoch in range(first_epoch, config.epochs + 1):
                first_batch = self._resume_batch + 1 if epoch == first_epoch else 1
                for batch in range(first_batch, config.batches_per_epoch + 1):
                    if self._stop.is_set():
                        break
                    loss, accuracy = self._train_step()
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.world.average_gradients(self.model.parameters())
                    self.optimizer.step()
                    if self.scheduler is not None:
                        self.scheduler.step()
                    self._after_batch(epoch, batch, loss.item(), accuracy.item())
                if self._stop.is_set():
                    break
                metrics = self.evaluate()
                self._refresh_examples()
                self._record_validation(epoch, self._global_step(epoch, config.batches_per_epoch), metrics)
                self.run_record.log(metrics, step=self._global_step(epoch, config.batches_per_epoch), epoch=epoch, split="val")
                if self.autosave_every and epoch % self.autosave_every == 0 and epoch < config.epochs:
                    self.save_now(f"{AUTOSAVE_PREFIX}{location_name(self.run_record.location)}_epoch_{epoch:04d}")
                if echo:
                    echo(
                        f"Epoch {epoch}/{config.epochs} | loss {self.state.losses[-1] if self.state.losses else float('nan'):.4f} | "
                        + " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                    )
            self._resume_batch = 0
            self._take_requested_saves()  # a save asked for during the last validation is written too
        return self.status()

    def _global_step(self, epoch: int, batch: int) -> int:
        return (epoch - 1) * self.config.batches_per_epoch + batch

    @contextmanager
    def _phase(self, mode: str):
        """The status around a loop: mode and start time; finished/stopped, or failed with the error; end time.
        The run's hooks: ``on_train_start`` here, ``on_train_error`` on a failure, ``on_train_end`` at :meth:`close`."""
        with self._lock:
            self.state.mode, self.state.started, self.state.finished = mode, time.time(), None
        self.run_record.start()
        try:
            yield
            with self._lock:
                self.state.mode = "finished" if not self._stop.is_set() else "stopped"
            if self._stop.is_set():
                self.run_record.status = "interrupted"
        except Exception as exc:
            with self._lock:
                self.state.mode, self.state.error = "failed", f"{type(exc).__name__}: {exc}"
            self.run_record.finish(exc)
            raise
        finally:
            with self._lock:
                self.state.finished = time.time()

    def _record_batch(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
        with self._lock:
            self.state.epoch, self.state.batch = epoch, batch
            self.state.steps.append(self._global_step(epoch, batch))
            self.state.losses.append(loss)
            self.state.accuracies.append(accuracy)

    def _record_validation(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        with self._lock:
            self.state.val_loss, self.state.val_acc = metrics["val_loss"], metrics["val_acc"]
            self.state.validations.append({"epoch": epoch, "step": step, "val_loss": metrics["val_loss"], "val_acc": metrics["val_acc"]})

    def _after_batch(self, epoch: int, batch: int, loss: float, accuracy: float) -> None:
        self._record_batch(epoch, batch, loss, accuracy)
        self.run_record.log({"loss": loss, "accuracy": accuracy}, step=self._global_step(epoch, batch), epoch=epoch)
        self._take_requested_saves()
        if batch % 25 == 0:
            self._refresh_examples()

    def pretrain(self, echo=None) -> dict[str, Any]:
        """Pretrain the encoder on ``pretrain_task`` for ``pretrain_epochs`` and save
        ``pretrained_encoder_<task>.pth`` (saved automatically; manual saves are refused meanwhile)."""
        from arc_comm.pretrain import PretrainHeads, evaluate_pretraining, pretrain_step

        c = self.config
        heads = PretrainHeads(self.model.encoder, c.pretrain_task)
        optimizer = torch.optim.Adam(heads.parameters(), lr=c.learning_rate)
        # binary is validated on unseen tasks: the evaluation split's grids with their own task labels
        with self._phase("pretraining"):
            for epoch in range(1, c.pretrain_epochs + 1):
                for batch in range(1, c.batches_per_epoch + 1):
                    if self._stop.is_set():
                        break
                    loss, accuracy = pretrain_step(heads, self.train_grids, self.train_labels, c.batch_size, self.generator)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    self._record_batch(epoch, batch, loss.item(), accuracy.item())
                    self.run_record.log({"pretrain_loss": loss.item(), "pretrain_accuracy": accuracy.item()},
                                        step=self._global_step(epoch, batch), epoch=epoch)  # fmt: skip
                if self._stop.is_set():
                    break
                metrics = evaluate_pretraining(heads, self.val_grids, self.val_labels)
                self._record_validation(epoch, self._global_step(epoch, c.batches_per_epoch), metrics)
                self.run_record.log({f"pretrain_{k}": v for k, v in metrics.items()}, step=self._global_step(epoch, c.batches_per_epoch),
                                    epoch=epoch, split="val")  # fmt: skip
                if echo:
                    echo(
                        f"Pretrain {c.pretrain_task} epoch {epoch}/{c.pretrain_epochs} | val_loss {metrics['val_loss']:.4f} | val_acc {metrics['val_acc']:.4f}"
                    )
            stopped = self._stop.is_set()
            path = self.save_encoder(complete=not stopped)
        return {**self.status(), "encoder": str(path)}

    def save_encoder(self, complete: bool = True) -> Path:
        """Commit ``pretrained_encoder_<task>.pth`` (encoder weights + architecture), replacing an older
        one. A stopped pretraining never replaces a complete encoder: it is saved beside it as
        ``pretrained_encoder_<task>_stopped.pth``."""
        c, s = self.config, self.state
        name = f"pretrained_encoder_{c.pretrain_task}.pth"
        if not complete and location_exists(join_location(self.checkpoint_dir, name)):
            name = f"pretrained_encoder_{c.pretrain_task}_stopped.pth"
        payload = {
            "encoder_state_dict": self.model.encoder.state_dict(),
            "pretrain_task": c.pretrain_task,
            "complete": complete,
            "epoch": s.epoch,
            "batch": s.batch,
            "val_loss": s.val_loss,
            "val_acc": s.val_acc,
            **{k: getattr(c, k) for k in ENCODER_FIELDS},
            "dataset_version": c.dataset_version,
            "max_grid_size": c.max_grid_size,
        }
        metrics = {k: payload[k] for k in ("val_loss", "val_acc") if payload[k] is not None}
        self.run_record.export(self.checkpoint_dir, {name: payload}, step=self._global_step(max(s.epoch, 1), s.batch), epoch=s.epoch,
                               name=name, metrics=metrics, layout=ENCODER_LAYOUT, model=self.model.encoder)  # fmt: skip
        return join_location(self.checkpoint_dir, name)

    def close(self) -> None:
        """Wait for pending checkpoint writes, close the metrics, end the run. A requested save that
        failed in the background was reported in the status already."""
        try:
            self.run_record.wait()
        except (TrainerCoreError, OSError):
            pass
        self.run_record.finish()

    def save_now(self, name: str, overwrite: bool = False) -> None:
        """Save from the training thread (or after :meth:`run`) and wait until it is committed
        (its failure is raised here)."""
        self._save(name, overwrite)
        self.run_record.wait()

    def save_final(self) -> str | None:
        """After :meth:`run`: commit ``<run>_final.pth`` (a run started from the dashboard with
        ``save_at_end``); nothing when no batch was trained. Returns the file name."""
        if not self.state.batch:
            return None
        name = f"{location_name(self.run_record.location)}_final"
        self.save_now(name)
        with self._lock:
            self.save_log.append({"name": name, "state": "written", "error": None})
        return f"{name}.pth"

    def _save(self, name: str, overwrite: bool):
        try:
            self.run_record.wait()  # an earlier background save's failure was reported by its callback
        except (TrainerCoreError, OSError):
            pass
        target = join_location(self.checkpoint_dir, f"{name}.pth")
        if location_exists(target) and not overwrite:
            raise UsageError(f"{target} exists; choose another name, or overwrite it (--overwrite, or \"overwrite\": true)")
        payload = self.payload()
        epoch, batch = payload["epoch"], payload["batch"]
        return self.run_record.save(
            step=self._global_step(max(epoch, 1), batch) if epoch else batch, epoch=epoch, name=f"{name}.pth", payload=payload,
            position={"epoch": epoch, "batch": batch},
            metrics={k: payload[k] for k in ("val_loss", "val_acc") if payload[k] is not None},
            extra={k: payload[k] for k in ("task_type", "bottleneck_type", "hidden_dim", "latent_dim", "vocab_size", "max_message_length")},
        )  # fmt: skip

    def examples(self) -> list[dict[str, Any]]:
        """The sender's messages for a few held-out grids, as of the last refresh (the training
        thread refreshes them every 25 batches and after each validation, so that a request never
        runs the model beside the training)."""
        return self._cached()[0]

    def message_usage(self) -> dict[str, Any] | None:
        """How the sender uses its channel on up to 256 held-out grids (same refresh as
        :meth:`examples`): distinct messages, and how often each symbol is sent at each position.
        None for the autoencoder bottleneck (no symbols)."""
        return self._cached()[1]

    def _cached(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        with self._lock:
            cached = self._examples
        if cached is None:
            self._refresh_examples()
            with self._lock:
                cached = self._examples
        return cached

    def _refresh_examples(self) -> None:
        examples = self._compute_examples()
        with self._lock:
            self._examples = examples

    def _compute_examples(self, count: int = 6, usage_grids: int = 256) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        grids = self.val_grids[: max(count, usage_grids)]
        communication = self.config.bottleneck_type == "communication"
        with torch.no_grad():
            latent = self.model.encoder(grids)
            ids = self.model.sender.greedy(latent).tolist() if communication else [[] for _ in grids]
        out = []
        for grid, h, w, message in zip(grids[:count], self.held_out.heights[:count], self.held_out.widths[:count], ids[:count], strict=True):
            out.append({"grid": grid[:h, :w].tolist(), "message": message})
        if not communication:
            return out, None
        vocab = self.config.vocab_size
        by_position = [[0] * vocab for _ in range(self.config.max_message_length)]
        for message in ids:
            for position, symbol in enumerate(message):
                by_position[position][symbol] += 1
        usage = {
            "grids": len(ids),
            "distinct_messages": len({tuple(m) for m in ids}),
            "symbols_used": sum(1 for symbol in range(vocab) if any(row[symbol] for row in by_position)),
            "vocab_size": vocab,
            "symbol_counts": by_position,  # [position][symbol]
        }
        return out, usage

    def payload(self) -> dict[str, Any]:
        """The seed's checkpoint fields beside core's training state (``model_state_dict``,
        ``optimizer_state_dict``, ``scheduler_state_dict``, ``trainer_state``) and ``config``;
        every value loadable with weights_only=True."""
        c, s = self.config, self.state
        return {
            "epoch": s.epoch,
            "batch": s.batch,
            "val_loss": s.val_loss,
            "val_acc": s.val_acc,
            "encoder_state_dict": self.model.encoder.state_dict(),
            "task_type": c.task_type,
            "bottleneck_type": c.bottleneck_type,
            "num_distractors": c.num_distractors,
            "use_input_output_pairs": c.use_input_output_pairs,
            "num_colors": NUM_COLORS,
            "embedding_dim": c.embedding_dim,
            "hidden_dim": c.hidden_dim,
            "latent_dim": c.latent_dim,
            "num_conv_layers": c.num_conv_layers,
            "vocab_size": c.vocab_size,
            "max_message_length": c.max_message_length,
            "max_grid_size": c.max_grid_size,
            "batch_size": c.batch_size,
            "learning_rate": c.learning_rate,
            "temperature": c.temperature,
            "lr_schedule": c.lr_schedule,
            "communication_method": c.communication_method,
            "max_grids": c.max_grids,
            "min_grid_size": c.min_grid_size,
            "dataset_version": c.dataset_version,
        }
