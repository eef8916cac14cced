"""A training session: data, model, optimiser, the loop, status and checkpoint requests.

`arc train` runs one in the foreground; `arc-serve` runs one in a background thread and talks to
it through :meth:`status`, :meth:`request_save` and :meth:`stop` (thread-safe). Checkpoints are
single `.pth` files committed atomically through trainer-core (a temporary sibling, fsync, a
manifest sidecar, then rename), readable with ``torch.load(weights_only=True)``. A save request
snapshots the weights at the end of the current batch; the file is written by trainer-core's
background writer, so training does not wait for the disk.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from arc_comm.config import ArcConfig
from arc_comm.data import NUM_COLORS, load_grids
from arc_comm.games import evaluate_selection, selection_step
from arc_comm.model import ARCAutoencoder, ARCEncoder

PACKAGE = "arc-comm"
SYSTEM_LAYOUT = "arc.system"


def build_model(config: ArcConfig, num_classes: int | None = None) -> ARCAutoencoder:
    encoder = ARCEncoder(config.num_colors, config.embedding_dim, config.hidden_dim, config.latent_dim, config.num_conv_layers)
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


@dataclass
class Status:
    mode: str = "idle"  # idle | training | pretraining | stopping | finished | failed
    epoch: int = 0
    batch: int = 0
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    val_loss: float | None = None
    val_acc: float | None = None
    started: float | None = None
    error: str | None = None


class TrainingSession:
    def __init__(self, config: ArcConfig, checkpoint_dir: str | Path = "checkpoints") -> None:
        from trainer_core.checkpoint import CheckpointManager

        self.config = config
        self.checkpoint_dir = Path(checkpoint_dir)
        torch.manual_seed(config.seed)
        self.train_set, self.held_out = load_grids(
            config.dataset_version, config.max_grid_size, config.min_grid_size, config.max_grids, config.seed
        )
        self.train_grids = torch.from_numpy(self.train_set.grids)
        self.val_grids = torch.from_numpy(self.held_out.grids)
        self.model = build_model(config)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.manager = CheckpointManager(
            self.checkpoint_dir, package=PACKAGE, layout=SYSTEM_LAYOUT, kind="training", single_file=True, async_save=True,
            name_format="{name}.pth",
        )  # fmt: skip
        self.state = Status()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._saves: list[tuple[str, bool]] = []

    # --- control (any thread) ---------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            s = self.state
            return {
                "mode": s.mode,
                "epoch": s.epoch,
                "batch": s.batch,
                "losses": list(s.losses[-200:]),
                "accuracies": list(s.accuracies[-200:]),
                "val_loss": s.val_loss,
                "val_acc": s.val_acc,
                "elapsed": (time.time() - s.started) if s.started else 0.0,
                "error": s.error,
            }

    def stop(self) -> None:
        self._stop.set()

    def request_save(self, name: str, overwrite: bool = False) -> None:
        with self._lock:
            self._saves.append((name, overwrite))

    # --- the loop -----------------------------------------------------------------------------
    def load(self, path: str | Path, *, fine_tune_lr: float | None = None) -> int:
        """Resume from a system checkpoint (optimizer state too), or fine-tune with a fresh
        optimizer at ``fine_tune_lr``. Returns the epoch to continue from."""
        from trainer_core.checkpoint import load_checkpoint

        loaded = load_checkpoint(path)
        ckpt = loaded.files[Path(path).name]
        self.model.load_state_dict(ckpt["model_state_dict"])
        if fine_tune_lr is None:
            self.optimizer.load_state_dict(ckpt["optimizer_state_dict"])
            return int(ckpt["epoch"])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=fine_tune_lr)
        return 0

    def run(self, start_epoch: int = 0, echo=None) -> dict[str, Any]:
        config = self.config
        with self._lock:
            self.state.mode, self.state.started, self.state.epoch = "training", time.time(), start_epoch
        try:
            for epoch in range(start_epoch + 1, config.epochs + 1):
                for batch in range(1, config.batches_per_epoch + 1):
                    if self._stop.is_set():
                        break
                    loss, accuracy, _ = selection_step(
                        self.model, self.train_grids, config.batch_size, config.num_distractors, config.temperature, self.generator
                    )
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizer.step()
                    with self._lock:
                        self.state.epoch, self.state.batch = epoch, batch
                        self.state.losses.append(loss.item())
                        self.state.accuracies.append(accuracy.item())
                        saves, self._saves = self._saves, []
                    for name, overwrite in saves:
                        self._save(name, overwrite)
                if self._stop.is_set():
                    break
                metrics = evaluate_selection(self.model, self.val_grids, config.val_grids, config.num_distractors)
                with self._lock:
                    self.state.val_loss, self.state.val_acc = metrics["val_loss"], metrics["val_acc"]
                if echo:
                    echo(
                        f"Epoch {epoch}/{config.epochs} | loss {self.state.losses[-1]:.4f} | val_loss {metrics['val_loss']:.4f} | val_acc {metrics['val_acc']:.4f}"
                    )
            with self._lock:
                self.state.mode = "finished" if not self._stop.is_set() else "stopped"
        except Exception as exc:
            with self._lock:
                self.state.mode, self.state.error = "failed", f"{type(exc).__name__}: {exc}"
            raise
        return self.status()

    def close(self) -> None:
        """Wait for pending checkpoint writes (errors are raised here)."""
        self.manager.close()

    def save_now(self, name: str, overwrite: bool = False) -> None:
        """Save from the training thread (or after :meth:`run`)."""
        self._save(name, overwrite)

    def _save(self, name: str, overwrite: bool) -> None:
        from trainer_core.errors import UsageError

        target = self.checkpoint_dir / f"{name}.pth"
        if target.exists() and not overwrite:
            raise UsageError(f"{target} exists; pass overwrite to replace it")
        payload = self.payload()
        self.manager.save(
            {f"{name}.pth": payload}, step=payload["batch"], epoch=payload["epoch"], name=f"{name}.pth",
            metrics={k: payload[k] for k in ("val_loss", "val_acc") if payload[k] is not None},
            extra={k: payload[k] for k in ("task_type", "bottleneck_type", "hidden_dim", "latent_dim", "vocab_size", "max_message_length")},
        )  # fmt: skip

    def examples(self, count: int = 6) -> list[dict[str, Any]]:
        """The sender's messages for the first ``count`` held-out grids (for the dashboard)."""
        grids = self.val_grids[:count]
        with torch.no_grad():
            latent = self.model.encoder(grids)
            ids = self.model.sender.greedy(latent).tolist() if self.config.bottleneck_type == "communication" else [[] for _ in grids]
        out = []
        for grid, h, w, message in zip(grids, self.held_out.heights[:count], self.held_out.widths[:count], ids, strict=True):
            out.append({"grid": grid[:h, :w].tolist(), "message": message})
        return out

    def payload(self) -> dict[str, Any]:
        """The seed's checkpoint fields (every value loadable with weights_only=True)."""
        c, s = self.config, self.state
        return {
            "epoch": s.epoch,
            "batch": s.batch,
            "val_loss": s.val_loss,
            "val_acc": s.val_acc,
            "model_state_dict": self.model.state_dict(),
            "encoder_state_dict": self.model.encoder.state_dict(),
            "optimizer_state_dict": self.optimizer.state_dict(),
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
            "max_grids": c.max_grids,
            "min_grid_size": c.min_grid_size,
            "dataset_version": c.dataset_version,
            "config": c.model_dump(mode="json"),
        }
