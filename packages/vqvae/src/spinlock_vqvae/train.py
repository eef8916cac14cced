"""Training of the categorical hierarchical VQ-VAE, on trainer-core's engine and metrics."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from spinlock_vqvae.categories import Categories, discover, normalization_stats
from spinlock_vqvae.config import VQVAEConfig
from spinlock_vqvae.dataset import FeatureDataset
from spinlock_vqvae.layout import BEST, LAST, LAYOUT
from spinlock_vqvae.model import CategoricalVQVAE, codebook_sizes, orthogonality, parse_ratios, topographic_loss
from trainer_core import (
    BatchShare,
    GlobalBatches,
    TorchState,
    TrainingRun,
    UsageError,
    VisualizationEvent,
    atomic_write_bytes,
    atomic_write_json,
    bytes_of,
    seed_everything,
    uneven_share_warning,
)


class Prepared:
    """Dataset split, categories, normalisation and model: everything before the first step."""

    def __init__(self, config: VQVAEConfig, drop_invalid: bool = False) -> None:
        with FeatureDataset(config.input, drop_invalid=drop_invalid) as data:
            self.feature_names = data.feature_names
            order = np.random.default_rng(config.seed).permutation(len(data))
            n_val = max(1, int(len(data) * config.val_fraction))
            self.val_idx, self.train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
            train = data.take(self.train_idx)
            val = data.take(self.val_idx)
        if len(self.train_idx) < 16:
            raise UsageError(f"{config.input} has only {len(self.train_idx)} training samples; give at least 20 samples")
        self.mean, self.std = train.mean(0).astype(np.float64), np.maximum(train.std(0), 1e-6).astype(np.float64)
        self.categories: Categories = discover((train - self.mean) / self.std, config.max_clusters, config.num_categories_auto, config.max_category_features)
        self.stats = normalization_stats(self.mean, self.std, self.categories)
        self.train = self.split_parts(train)
        self.val = self.split_parts(val)
        self.codes = codebook_sizes(len(self.train_idx), parse_ratios(config.compression_ratios), config.max_codebook_size)
        torch.manual_seed(config.seed)
        self.model = CategoricalVQVAE(
            [len(g) for g in self.categories.groups],
            config.embedding_dim,
            self.codes,
            config.hidden_size,
            config.ema_decay,
            config.commitment_cost,
            config.dead_code_threshold,
        )

    def split_parts(self, x: np.ndarray) -> list[torch.Tensor]:
        return [torch.from_numpy(((x[:, g] - self.mean[g]) / self.std[g]).astype(np.float32)) for g in self.categories.groups]

    def size(self) -> dict[str, int]:
        params = sum(p.numel() for p in self.model.parameters())
        codes = sum(q.codebook.numel() for c in self.model.coders for q in c.levels)
        return {
            "parameters": params,
            "codebook_entries": codes,
            "category_count": self.categories.count,
            "tokens_per_sample": self.categories.count * 3,
        }


def _losses(
    model: CategoricalVQVAE, parts: list[torch.Tensor], config: VQVAEConfig, reset: bool, generator: torch.Generator, share: Any = None
) -> tuple[torch.Tensor, dict[str, float], int]:
    """The training loss of one batch and its logged parts. Under torchrun (``share``, core's
    ``BatchShare``) the batch terms (commitment, orthogonality, topography) are computed on the
    gathered global batch and the reconstruction sums over this rank's rows are scaled so that,
    after DDP averages the gradients, the step is the single-process step at the same global batch."""
    out = model(parts, reset_dead=reset, generator=generator, **({"share": share} if share is not None else {}))
    n_features = sum(x.shape[1] for x in parts)
    rows = share.batch_len if share is not None else len(parts[0])
    recon_sum = sum(F.mse_loss(r, x, reduction="sum") for r, x in zip(out["recon"], parts, strict=True))
    partial_sum = sum(F.mse_loss(r, x, reduction="sum") for r, x in zip(out["partial"], parts, strict=True))
    recon, partial = recon_sum / (rows * n_features), partial_sum / (rows * n_features)
    inputs = torch.cat(parts, 1)
    if share is not None:
        recon, partial = recon * share.world.size, partial * share.world.size
        inputs = share.gather(inputs)
    commitment = sum(out["commitment"]) / len(parts)
    ortho = orthogonality(out["quantized"])
    topo = topographic_loss(inputs, torch.cat(out["quantized"], 1), config.topo_samples, generator)
    ortho_term = config.orthogonality_weight * F.relu(ortho - config.orthogonality_target)
    loss = recon + commitment + ortho_term + config.informativeness_weight * partial + config.topo_weight * topo
    if share is not None:  # what one process would log: the global batch's reconstruction terms
        sums = share.total(torch.stack([recon_sum.detach(), partial_sum.detach()])) / (rows * n_features)
        recon_logged = sums[0].item()
        loss_logged = (sums[0] + commitment + ortho_term + config.informativeness_weight * sums[1] + config.topo_weight * topo).item()
    else:
        recon_logged, loss_logged = recon.item(), loss.item()
    return (
        loss,
        {"loss": loss_logged, "recon": recon_logged, "commitment": commitment.item(), "ortho": ortho.item(), "topo_loss": topo.item()},
        sum(out["reset"]),
    )


@torch.no_grad()
def evaluate(model: CategoricalVQVAE, parts: list[torch.Tensor], config: VQVAEConfig) -> dict[str, float]:
    """The documented metrics on a split (see the README for their definitions)."""
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    model.eval()
    out = model(parts)
    model.train()
    x = torch.cat(parts, 1)
    recon = torch.cat(out["recon"], 1)
    mse = F.mse_loss(recon, x).item()
    metrics: dict[str, float] = {
        "val_loss": mse + F.mse_loss(torch.cat(out["partial"], 1), x).item() * config.informativeness_weight,
        "reconstruction_quality": 1.0 - mse,
    }
    used, perplexity = [], []
    for level in range(3):
        fractions = []
        for c, coder in enumerate(model.coders):
            idx = out["indices"][c][:, level]
            fractions.append(len(torch.unique(idx)) / coder.levels[level].num_codes)
            perplexity.append(coder.levels[level].perplexity(idx))
        metrics[f"utilization_level{level + 1}"] = float(np.mean(fractions))
        used.append(np.mean(fractions))
    metrics["utilization"] = float(np.mean(used))
    metrics["perplexity"] = float(np.mean(perplexity))
    metrics["orthogonality"] = orthogonality(out["quantized"]).item()
    keep = slice(0, min(len(x), 1000))
    a = pdist(x[keep].numpy())
    b = pdist(torch.cat(out["quantized"], 1)[keep].numpy())
    metrics["topographic_correlation"] = float(spearmanr(a, b).statistic)  # pdist: off-diagonal pairs only
    metrics["composite_metric"] = (
        (
            config.checkpoint_loss_weight * metrics["val_loss"]
            - config.checkpoint_topo_weight * metrics["topographic_correlation"]
            - config.checkpoint_quality_weight * metrics["reconstruction_quality"]
        )
        if config.checkpoint_use_composite
        else metrics["val_loss"]
    )
    return metrics


def _payload(prep: Prepared, config: VQVAEConfig, history: list, metrics: dict) -> dict[str, Any]:
    """best_model.pt / last_model.pt keys beside core's training state (``model_state_dict``,
    ``optimizer_state_dict``, ``trainer_state``): the seed's keys, tensors and plain values only."""
    return {
        "group_indices": [torch.from_numpy(g.astype(np.int64)) for g in prep.categories.groups],
        "normalization_stats": {k: torch.from_numpy(v) for k, v in prep.stats.items()},
        "feature_names": list(prep.feature_names),
        "model_sizes": {
            "group_sizes": [len(g) for g in prep.categories.groups],
            "latent": config.embedding_dim,
            "codes": prep.codes,
            "hidden": config.hidden_size,
        },
        "history": history,
        "val_loss": metrics.get("val_loss"),
        "metrics": metrics,
    }


def train(
    config: VQVAEConfig,
    *,
    resume_from: str | Path | None = None,
    pm: Any = None,
    progress: bool | None = None,
    drop_invalid: bool = False,
    max_epochs_this_run: int | None = None,
    visualize: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or resume) and return a summary. ``visualize`` holds vizwatch options
    (``visualization.options(...)``); they do not enter the config hash, so a run can be resumed
    with or without snapshots."""
    seed_everything(config.seed)
    # the backward of the topographic loss's pair indexing accumulates in a thread-order-dependent
    # way on CPU; deterministic kernels make runs (and resumes) bit-identical
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    prep = Prepared(config, drop_invalid)
    model = prep.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed + 1)
    steps_per_epoch = math.ceil(len(prep.train_idx) / config.batch_size)
    run = TrainingRun(
        config,
        layout=LAYOUT,
        state=TorchState(model, optimizer, generators={"generator": generator}),
        run_dir=None if resume_from is not None else config.output_dir,
        resume=resume_from,
        pm=pm,
        sink_options={"console": dict(total_steps=steps_per_epoch * config.epochs, unit="epoch", total=config.epochs, progress=progress)},
    )
    out_dir = run.run_dir
    position = run.position
    epoch, step = position.get("epoch", 0), position.get("step", 0)
    best_score, bad_epochs = position.get("best_score", math.inf), position.get("bad_epochs", 0)
    best_metrics = dict(position.get("best_metrics") or {})
    history = list(run.loaded_files[Path(run.resumed_from).name]["history"]) if run.resumed_from else []
    world = run.world  # under torchrun: DDP over the ranks, each with its share of every global batch
    if world.main:
        atomic_write_bytes(out_dir / "normalization_stats.npz", bytes_of("normalization_stats.npz", prep.stats))
    if world.multi:
        forward = torch.nn.parallel.DistributedDataParallel(model, forward_sync_buffers=False)
        if (warning := uneven_share_warning(config.batch_size, world)) and world.main:
            print(warning, file=sys.stderr)
    else:
        forward = torch.compile(model) if config.use_torch_compile else model
    n_train = len(prep.train_idx)
    last_saved = None
    stop_at = config.epochs if max_epochs_this_run is None else min(config.epochs, epoch + max_epochs_this_run)
    try:
        with run:
            while epoch < stop_at:
                sums: dict[str, float] = {}
                resets = 0
                batches = GlobalBatches(n_train, config.batch_size, seed=config.seed, epoch=epoch, world=world)
                for batch, idx in enumerate(batches):
                    rows = min(config.batch_size, n_train - batch * config.batch_size)  # the global batch's
                    if rows < max(2, world.size):
                        continue
                    step += 1
                    reset = bool(config.dead_code_reset_interval) and step % config.dead_code_reset_interval == 0
                    share = BatchShare(world, rows) if world.multi else None
                    loss, parts, reset_count = _losses(forward, [p[idx] for p in prep.train], config, reset, generator, share)
                    resets += reset_count
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v
                epoch += 1
                record = {f"train_{k}": v / steps_per_epoch for k, v in sums.items()}
                record["train_dead_codes_reset"] = resets  # a training count (the seed printed DeadCodesReset)
                if epoch % config.val_every_n_epochs == 0 or epoch == config.epochs:
                    record.update(evaluate(model, prep.val, config))
                    score = record["composite_metric"]
                    improved = score < best_score - config.early_stopping_min_delta
                    if improved:
                        best_score, bad_epochs, best_metrics = score, 0, dict(record)
                    else:
                        bad_epochs += config.val_every_n_epochs
                    position = {"epoch": epoch, "step": step, "best_score": best_score, "bad_epochs": bad_epochs, "best_metrics": best_metrics}
                    history.append({"epoch": epoch, **record})
                    if visualize and visualize.get("enabled"):
                        _visualize(run, prep, record, epoch, step, config, visualize)
                    run.log(record, step=step, epoch=epoch, split="val")
                    payload = _payload(prep, config, history, record)
                    metrics = {k: v for k, v in record.items() if isinstance(v, (int, float))}
                    for name in (BEST, LAST) if improved else (LAST,):
                        last_saved = run.save(step=step, epoch=epoch, metrics=metrics, position=position, payload=payload, name=name)
                    if world.main:
                        atomic_write_json(out_dir / "training_history.json", history)
                    if bad_epochs >= config.early_stopping_patience:
                        run.status = "early_stopped"
                        break
            if epoch < config.epochs and run.status == "completed":
                run.status = "interrupted"
            if last_saved is not None and world.main and run.hooks.visualize_checkpoint.get_hookimpls():
                _draw_codebooks(run, prep, last_saved, epoch, step, visualize)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    return {
        "status": run.status,
        "epoch": epoch,
        "step": step,
        "output_dir": run.location,
        "best_metrics": best_metrics,
        "last_metrics": history[-1] if history else {},
        **prep.size(),
    }


def _visualize(run: TrainingRun, prep: Prepared, record: dict, epoch: int, step: int, config: VQVAEConfig, options: dict) -> None:
    from spinlock_vqvae.visualization import category_names, splits_factory

    metrics = {"val_loss": record["val_loss"], "quality": record["reconstruction_quality"], "ortho": record["orthogonality"]}
    run.visualize_epoch_end(
        VisualizationEvent(
            run_dir=run.run_dir,
            epoch=epoch,
            step=step,
            metrics=metrics,
            class_names=category_names(prep.categories.groups, prep.feature_names),
            total_epochs=config.epochs,
            package=LAYOUT.package,
            options=options,
            splits_factory=splits_factory(prep.model, prep.train, prep.val),
        )
    )


def _draw_codebooks(run: TrainingRun, prep: Prepared, checkpoint: Any, epoch: int, step: int, visualize: dict | None) -> None:
    """The codebooks of the last checkpoint, usage counted on the training split, to a plotter
    (vizwatch draws ``codebooks_epoch_NNN.png`` in the output directory)."""
    from spinlock_vqvae.visualization import category_names, codebook_options, codebooks

    was_training = prep.model.training
    prep.model.eval()
    tokens = prep.model.tokenize(prep.train).numpy()
    prep.model.train(was_training)
    names = category_names(prep.categories.groups, prep.feature_names)
    method = (visualize or {}).get("method", "pca") if (visualize or {}).get("enabled") else "pca"
    event = VisualizationEvent(run_dir=run.run_dir, epoch=epoch, step=step, package=LAYOUT.package,
                               options=codebook_options(method), codebooks=codebooks(prep.model, names, tokens))  # fmt: skip
    run.visualize_checkpoint(event, checkpoint)


def dry_run(config: VQVAEConfig, drop_invalid: bool = False) -> dict[str, Any]:
    """Validate config and dataset, discover categories, size the model, time a few steps. Writes nothing."""
    seed_everything(config.seed)
    prep = Prepared(config, drop_invalid)
    optimizer = torch.optim.AdamW(prep.model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    batch = torch.arange(min(config.batch_size, len(prep.train_idx)))
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        loss, _, _ = _losses(prep.model, [p[batch] for p in prep.train], config, False, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    steps = math.ceil(len(prep.train_idx) / config.batch_size)
    return {
        "config": config.model_dump(mode="json"),
        "samples": {"train": len(prep.train_idx), "val": len(prep.val_idx)},
        "features": len(prep.feature_names),
        "categories": [[prep.feature_names[i] for i in g] for g in prep.categories.groups],
        "silhouette": prep.categories.silhouette,
        "codebook_sizes": prep.codes,
        **prep.size(),
        "seconds_per_epoch_estimate": min(timings[1:]) * steps,
    }
