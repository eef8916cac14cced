"""The example training loop. Imports torch; only loaded when training runs."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer_core.checkpoint import CheckpointManager
from trainer_core.config import write_resolved_config
from trainer_core.example.config import ExampleConfig
from trainer_core.example.data import make_spirals
from trainer_core.metrics import MetricsLogger, build_sinks
from trainer_core.plugins import collect_registry, get_plugin_manager
from trainer_core.retention import RetentionPolicy
from trainer_core.run import Run
from trainer_core.session import open_run, restore_run, seed_everything
from trainer_core.training_state import epoch_permutation, training_state
from trainer_core.visuals import SplitData, VisualizationEvent

PACKAGE = "trainer-core"
LAYOUT = "core.example"
CONFIG_FILE = "config.json"


class SpiralNet(nn.Module):
    def __init__(self, hidden: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


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
    pm = pm if pm is not None else get_plugin_manager()
    registry = collect_registry(pm)
    run = open_run(config, package=PACKAGE, layout=LAYOUT, run_dir=run_dir, resume=resume)
    run_dir, chash = run.run_dir, run.config_hash
    seed_everything(config.seed)
    x, y = make_spirals(config.samples, config.classes, config.noise, config.seed)
    n_val = int(len(x) * config.val_fraction)
    x_train, y_train = torch.from_numpy(x[n_val:]), torch.from_numpy(y[n_val:])
    x_val, y_val = torch.from_numpy(x[:n_val]), torch.from_numpy(y[:n_val])
    model = SpiralNet(config.hidden_size, config.classes, config.dropout)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_epochs, gamma=config.lr_gamma)
    loss_fn = nn.CrossEntropyLoss()
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs

    manager = CheckpointManager(
        run_dir / "checkpoints",
        package=PACKAGE,
        layout=LAYOUT,
        kind="training",
        name_format="checkpoint_step_{step:06d}",
        retention=RetentionPolicy(keep_last=config.keep_last, keep_best=config.keep_best, metric="val_loss", mode="min"),
        async_save=config.async_save,
        hooks=pm.hook,
        run=run,
    )
    epoch, batch, step = 0, 0, 0
    if run.resumed_from:
        position, resumed = restore_run(run, model, optimizer, scheduler, manager=manager, trust_pickle=trust_pickle)
        epoch, batch, step = position["epoch"], position["batch"], position["step"]
    write_resolved_config(config, run_dir)
    console = dict(
        total_steps=total_steps, unit="epoch", total=config.epochs, line_every=config.log_every, progress=progress, initial_step=step
    )
    logger = MetricsLogger(run_dir, build_sinks(registry.sinks, run_dir, {"console": console}))
    if run.resumed_from:
        logger.resume(step)
        pm.hook.on_resume(run=run, checkpoint=resumed)
    pm.hook.on_train_start(run=run)
    wants_visuals = bool(pm.hook.visualize_epoch_end.get_hookimpls() or pm.hook.visualize_checkpoint.get_hookimpls())

    def save(metrics: dict[str, float]) -> None:
        state = training_state(model, optimizer, scheduler, position={"epoch": epoch, "batch": batch, "step": step})
        state[CONFIG_FILE] = config.model_dump(mode="json")  # enough to rebuild the run from the checkpoint alone
        result = manager.save(state, step=step, epoch=epoch, metrics=metrics, config_hash=chash)
        if wants_visuals:
            event = visuals(metrics)
            notify = lambda info: pm.hook.visualize_checkpoint(event=event, checkpoint=info)  # noqa: E731
            result.add_done_callback(lambda f: f.exception() is None and notify(f.result())) if hasattr(
                result, "add_done_callback"
            ) else notify(result)

    def evaluate() -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            metrics = {"val_loss": loss_fn(logits, y_val).item(), "val_acc": (logits.argmax(1) == y_val).float().mean().item()}
        model.train()
        return metrics

    def visuals(metrics: dict[str, float]) -> VisualizationEvent:
        model.eval()
        with torch.no_grad():
            splits = {}
            for name, (xs, ys) in {"train": (x_train[:500], y_train[:500]), "val": (x_val[:300], y_val[:300])}.items():
                hidden = model.body(xs)
                splits[name] = SplitData(hidden.numpy().copy(), ys.numpy().copy(), model.head(hidden).argmax(1).numpy().copy())
        model.train()
        return VisualizationEvent(
            run_dir=run_dir,
            epoch=epoch,
            step=step,
            metrics=dict(metrics),
            splits=splits,
            class_names=[f"arm {i}" for i in range(config.classes)],
            total_epochs=config.epochs,
            package=PACKAGE,
        )

    status = "completed"
    last_metrics: dict[str, float] = {}
    try:
        model.train()
        while epoch < config.epochs:
            order = epoch_permutation(len(x_train), epoch, config.seed)
            running = 0.0
            while batch < steps_per_epoch:
                if max_steps is not None and step >= max_steps:
                    status = "interrupted"
                    return _finish(manager, logger, pm, run, status, step, epoch, last_metrics)
                idx = order[batch * config.batch_size : (batch + 1) * config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x_train[idx]), y_train[idx])
                loss.backward()
                optimizer.step()
                batch += 1
                step += 1
                running += loss.item()
                logger.log({"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}, step=step, epoch=epoch + 1)
                if on_step is not None:
                    on_step(step)
                if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0 and batch < steps_per_epoch:
                    save({"loss": loss.item()})
            scheduler.step()
            epoch += 1
            batch = 0
            last_metrics = {"train_loss": running / steps_per_epoch, **evaluate()}
            logger.log(last_metrics, step=step, epoch=epoch, split="val")
            save(last_metrics)
            if wants_visuals:
                pm.hook.visualize_epoch_end(event=visuals(last_metrics))
    except BaseException as exc:
        status = "failed" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
        pm.hook.on_train_error(run=run, error=exc)
        _finish(manager, logger, pm, run, status, step, epoch, last_metrics)
        raise
    return _finish(manager, logger, pm, run, status, step, epoch, last_metrics)


def _finish(
    manager: CheckpointManager, logger: MetricsLogger, pm: Any, run: Run, status: str, step: int, epoch: int, metrics: dict[str, float]
) -> dict[str, Any]:
    try:
        manager.close()
    finally:
        logger.close()
        pm.hook.on_train_end(run=run, status=status)
    latest = manager.latest()
    return {
        "status": status,
        "run_dir": str(run.run_dir),
        "epoch": epoch,
        "step": step,
        "metrics": metrics,
        "latest_checkpoint": latest.path if latest else None,
        "checkpoints": [c.path for c in manager.checkpoints()],
    }
