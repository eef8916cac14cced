"""The example training loop: read it top to bottom, then copy it for a new package.

Data, model, optimizer; a :class:`~trainer_core.TrainingRun` that owns the run directory,
checkpoints, metrics and hooks; the loop. Imports torch; loaded only when training runs.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer_core import GlobalBatches, RetentionPolicy, SplitData, TorchState, TrainingRun, VisualizationEvent, uneven_share_warning
from trainer_core.example.config import ExampleConfig
from trainer_core.example.data import make_spirals
from trainer_core.example.layout import LAYOUT
from trainer_core.example.model import build_model


def train(
    config: ExampleConfig,
    run_dir: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    max_steps: int | None = None,
    trust_pickle: bool = False,
    pm: Any = None,
    progress: bool | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) and return a summary. ``max_steps`` stops early as if interrupted."""
    # data: a fixed validation slice, the rest shuffled per epoch by (seed, epoch)
    torch.manual_seed(config.seed)
    x, y = make_spirals(config.samples, config.classes, config.noise, config.seed)
    n_val = int(len(x) * config.val_fraction)
    x_train, y_train = torch.from_numpy(x[n_val:]), torch.from_numpy(y[n_val:])
    x_val, y_val = torch.from_numpy(x[:n_val]), torch.from_numpy(y[:n_val])
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)

    # model and optimizer
    model = build_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_epochs, gamma=config.lr_gamma)
    loss_fn = nn.CrossEntropyLoss()

    # the run: directory, seeding, checkpoints, metrics and hooks (restores everything on resume)
    run = TrainingRun(
        config,
        layout=LAYOUT,
        state=TorchState(model, optimizer, scheduler),
        run_dir=run_dir,
        resume=resume,
        pm=pm,
        retention=RetentionPolicy(keep_last=config.keep_last, keep_best=config.keep_best, metric="val_loss", mode="min"),
        async_save=config.async_save,
        trust_pickle=trust_pickle,
        sink_options={
            "console": dict(total_steps=steps_per_epoch * config.epochs, total=config.epochs, line_every=config.log_every, progress=progress)
        },
    )
    epoch, batch, step = (run.position.get(k, 0) for k in ("epoch", "batch", "step"))
    world = run.world  # under torchrun: DDP, each rank takes its share of every global batch
    forward = torch.nn.parallel.DistributedDataParallel(model) if world.multi else model
    if (warning := uneven_share_warning(config.batch_size, world)) and world.main:
        print(warning, file=sys.stderr)

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            metrics = {"val_loss": loss_fn(logits, y_val).item(), "val_acc": (logits.argmax(1) == y_val).float().mean().item()}
        model.train()
        return metrics

    def picture(metrics: dict[str, float]) -> VisualizationEvent:
        """What visualization plugins draw: the hidden layer of a few train and val points."""
        model.eval()
        with torch.no_grad():
            splits = {}
            for name, (xs, ys) in {"train": (x_train[:500], y_train[:500]), "val": (x_val[:300], y_val[:300])}.items():
                hidden = model.body(xs)
                splits[name] = SplitData(hidden.numpy().copy(), ys.numpy().copy(), model.head(hidden).argmax(1).numpy().copy())
        model.train()
        return VisualizationEvent(
            run_dir=run.run_dir, epoch=epoch, step=step, metrics=dict(metrics), splits=splits,
            class_names=[f"arm {i}" for i in range(config.classes)], total_epochs=config.epochs, package=LAYOUT.package,
        )  # fmt: skip

    def save(metrics: dict[str, float]) -> None:
        run.save(
            step=step, epoch=epoch, metrics=metrics, position={"epoch": epoch, "batch": batch, "step": step},
            visualization=picture(metrics) if run.wants_visuals else None,
        )  # fmt: skip

    metrics: dict[str, float] = {}
    with run:
        model.train()
        while epoch < config.epochs:
            running = 0.0
            for idx in GlobalBatches(len(x_train), config.batch_size, seed=config.seed, epoch=epoch, world=world, start=batch):
                if max_steps is not None and step >= max_steps:
                    run.status = "interrupted"
                    break
                loss = loss_fn(forward(x_train[idx]), y_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                batch, step = batch + 1, step + 1
                running += loss.item()
                run.log({"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}, step=step, epoch=epoch + 1)
                if on_step is not None:
                    on_step(step)
                if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0 and batch < steps_per_epoch:
                    save({"loss": loss.item()})
            if run.status == "interrupted":
                break
            scheduler.step()
            epoch, batch = epoch + 1, 0
            metrics = {"train_loss": running / steps_per_epoch, **evaluate()}
            run.log(metrics, step=step, epoch=epoch, split="val")
            save(metrics)
            if run.wants_visuals:
                run.visualize_epoch_end(picture(metrics))
    latest = run.latest()
    return {
        "status": run.status,
        "run_dir": run.location,
        "epoch": epoch,
        "step": step,
        "metrics": metrics,
        "latest_checkpoint": latest.path if latest else None,
        "checkpoints": [c.path for c in run.checkpoints()],
    }
