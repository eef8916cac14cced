"""The training loop of `vizwatch train`, on core's checkpoint engine, metrics and hooks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer_core import GlobalBatches, RetentionPolicy, SplitData, TorchState, TrainingRun, VisualizationEvent, sync_batchnorm
from vizwatch.trainer.config import VizwatchConfig
from vizwatch.trainer.data import load_dataset
from vizwatch.trainer.layout import LAYOUT
from vizwatch.trainer.model import Classifier, focal_loss
from vizwatch.trainer.sampling import oversample, split


def evaluate(model: Classifier, x: torch.Tensor, y: torch.Tensor, gamma: float) -> tuple[dict[str, float], np.ndarray]:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = focal_loss(logits, y, gamma).item()
    model.train()
    predictions = logits.argmax(1).numpy()
    truth = y.numpy()
    return {
        "val_loss": loss,
        "val_acc": float((predictions == truth).mean()),
        "val_balanced_acc": float(balanced_accuracy_score(truth, predictions)),
        "val_macro_f1": float(f1_score(truth, predictions, average="macro", zero_division=0)),
    }, predictions


def train(
    config: VizwatchConfig,
    run_dir: str | Path | None = None,
    *,
    resume: str | Path | None = None,
    pm: Any = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Train (or resume) the classifier; returns a summary with the final metrics."""
    torch.manual_seed(config.seed)
    data = load_dataset(config.dataset, config.classes, config.samples, config.seed)
    train_idx, val_idx = split(data.y, config.val_fraction, config.seed)
    fit_idx = oversample(train_idx, data.y, config.oversample_target, config.seed)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    x_fit, y_fit = x[fit_idx], y[fit_idx]
    x_val, y_val = x[val_idx], y[val_idx]
    x_train, y_train = x[train_idx], y[train_idx]

    model = Classifier(data.x.shape[1], len(data.class_names), config.hidden_size, config.latent_size, config.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    steps_per_epoch = math.ceil(len(fit_idx) / config.batch_size)
    run = TrainingRun(
        config,
        layout=LAYOUT,
        state=TorchState(model, optimizer, scheduler),
        run_dir=run_dir,
        resume=resume,
        pm=pm,
        retention=RetentionPolicy(keep_last=config.keep_last, keep_best=1, metric="val_balanced_acc", mode="max"),
        sink_options={"console": dict(total_steps=steps_per_epoch * config.epochs, unit="epoch", total=config.epochs, progress=progress)},
    )
    epoch, step = run.position.get("epoch", 0), run.position.get("step", 0)
    options = {
        "enabled": config.visualize_training,
        "method": config.viz_method,
        "every": config.viz_every,
        "root": config.viz_root,
        "worker": config.viz_worker,
        "seed": config.seed,
        "on": config.viz_on,
    }
    wants_visuals = config.visualize_training and run.wants_visuals

    def latent_splits() -> dict[str, SplitData]:
        model.eval()
        with torch.no_grad():
            out = {}
            for name, (xs, ys) in {"train": (x_train, y_train), "val": (x_val, y_val)}.items():
                latent = model.encoder(xs)
                out[name] = SplitData(latent.numpy(), ys.numpy(), model.head(latent).argmax(1).numpy())
        model.train()
        return out

    metrics: dict = dict(run.resumed.metrics) if run.resumed is not None else {}  # a finished run resumed trains nothing
    world = run.world  # under torchrun: DDP, each rank trains on its share of every global batch
    forward = model
    if world.multi:  # batch norm over the global batch (torch's SyncBatchNorm is CUDA-only: core's on CPU)
        forward = torch.nn.parallel.DistributedDataParallel(sync_batchnorm(model))
    with run:
        model.train()
        while epoch < config.epochs:
            total_loss, correct = 0.0, 0
            for idx in GlobalBatches(len(fit_idx), config.batch_size, seed=config.seed, epoch=epoch, world=world):
                logits = forward(x_fit[idx])
                loss = focal_loss(logits, y_fit[idx], config.focal_gamma)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                total_loss += loss.item() * len(idx)
                correct += int((logits.argmax(1) == y_fit[idx]).sum())
            total_loss, correct = world.all_sum([total_loss, correct])
            scheduler.step()
            epoch += 1
            val_metrics, _ = evaluate(model, x_val, y_val, config.focal_gamma)
            metrics = {"train_loss": total_loss / len(fit_idx), "train_acc": correct / len(fit_idx), **val_metrics}
            run.log(metrics, step=step, epoch=epoch, split="val")
            event = VisualizationEvent(
                run_dir=run.run_dir, epoch=epoch, step=step, metrics=metrics, class_names=data.class_names, total_epochs=config.epochs,
                package=LAYOUT.package, options=options, splits_factory=latent_splits,
            ) if wants_visuals else None  # fmt: skip
            run.save(step=step, epoch=epoch, metrics=metrics, position={"epoch": epoch, "batch": 0, "step": step}, visualization=event)
            if event is not None:
                run.visualize_epoch_end(event)
    best = max(run.checkpoints(), key=lambda c: c.metrics.get("val_balanced_acc", -1), default=None)
    return {
        "status": run.status,
        "run_dir": run.location,
        "epoch": epoch,
        "step": step,
        "metrics": metrics,
        "class_names": data.class_names,
        "train_size": len(train_idx),
        "oversampled_size": len(fit_idx),
        "val_size": len(val_idx),
        "best_checkpoint": best.path if best else None,
    }
