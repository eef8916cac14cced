"""`spinlock train-ano`: an atomic neural operator model from an operator's tokens to its parameters.

The model reads one token per (category, level) position of `encode-to-tokens`'s output, embeds
each with its own table (``embedding_dim`` wide), concatenates the embeddings and maps them with
an MLP (``layers`` hidden layers of ``hidden_size``, GELU, dropout) to the operator parameters
stored in the dataset, standardised with the training split's mean and deviation (MSE loss,
AdamW). The same MLP on the raw features (normalised) instead of the token embeddings is the
reference it is measured against, trained by the same command with the same seed and split.

Everything runs through core's ``TrainingRun``: the layout ``vqvae.ano`` (``ano_model.pt``,
single file, listed by ``core list-checkpoints``), metrics, config validation and hooks; an
interrupted run continues from ``ano_model.pt`` with ``--resume-from``.

Reported on a held-out split (``test_fraction`` of the rows, seeded): R² per parameter
(1 - Σ(y - ŷ)² / Σ(y - ȳ)², ȳ the held-out mean) of the token model, the raw-feature model, ridge
regression on the raw features and the training mean; and the token model's mean R² over the
raw-feature model's (the issue's goal: at least 0.8).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spinlock_vqvae.config import ANOConfig
from spinlock_vqvae.layout import ANO_LAYOUT as LAYOUT
from spinlock_vqvae.layout import ANO_MODEL_FILE as MODEL_FILE
from trainer_core import TorchState, TrainingRun, UsageError, atomic_write_json, seed_everything

BEST_FILE = "best_ano_model.pt"  # the lowest validation loss: what the results report
RESULTS_FILE = "ano_results.json"
RAW_BASELINE_DIR = "raw_features_baseline"


class OperatorRegressor(nn.Module):
    """Token ids (B, positions) or features (B, F) -> standardised parameters (B, P).

    Tokens: position p has its own embedding table (``token_sizes[p]`` rows, ``embedding_dim``
    wide). With ``group`` = g, the embeddings of each run of g positions (a category's levels) are
    summed, as the VQ-VAE sums its residual levels into the category's quantised latent; the
    tables can then start as the VQ-VAE's codebooks (``load_codebooks``), so the summed embedding
    *is* the quantised latent before training moves it."""

    def __init__(self, outputs: int, *, token_sizes: list[int] | None = None, features: int | None = None,
                 embedding_dim: int = 16, group: int = 1, hidden: int = 256, layers: int = 2, dropout: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        if (token_sizes is None) == (features is None):
            raise ValueError("give token_sizes or features")
        if token_sizes is not None and len(token_sizes) % group:
            raise ValueError(f"{len(token_sizes)} token positions do not split into groups of {group}")
        self.group = group
        self.embeddings = nn.ModuleList(nn.Embedding(k, embedding_dim) for k in token_sizes or [])
        width = len(self.embeddings) // group * embedding_dim if token_sizes is not None else features
        blocks: list[nn.Module] = []
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        self.trunk = nn.Sequential(*blocks, nn.Linear(width, outputs))

    @torch.no_grad()
    def load_codebooks(self, codebooks: list[torch.Tensor]) -> None:
        """Start position p's table from ``codebooks[p]`` (K_p x embedding_dim)."""
        for table, codebook in zip(self.embeddings, codebooks, strict=True):
            table.weight.copy_(codebook)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.embeddings):
            embedded = torch.stack([table(x[:, p]) for p, table in enumerate(self.embeddings)], 1)  # (B, positions, E)
            x = embedded.view(len(x), -1, self.group, embedded.shape[-1]).sum(2).flatten(1)
        return self.trunk(x)


class ANOData:
    """Tokens, raw features and parameters of one dataset, split and standardised."""

    def __init__(self, config: ANOConfig) -> None:
        import h5py

        from spinlock_vqvae.dataset import DatasetError, FeatureDataset

        with FeatureDataset(config.dataset) as data:
            self.parameter_names, parameters = data.parameters()
            features = data.read()
        path = Path(config.tokens)
        if not path.is_file():
            raise DatasetError(f"tokens file not found: {path} (make it with `spinlock encode-to-tokens --dataset {config.dataset} --output {path}`)")
        try:
            with h5py.File(path, "r") as f:
                if "tokens" not in f or "codebook_sizes" not in f:
                    raise DatasetError(f"{path} has no /tokens and /codebook_sizes: give a file written by `spinlock encode-to-tokens`")
                tokens = np.asarray(f["tokens"][()], dtype=np.int64)
                model_attr = str(f.attrs.get("model", "")) or None
                self.codes = [int(k) for k in f["codebook_sizes"][()]]
        except OSError as exc:
            raise DatasetError(f"{path} is not a readable HDF5 file ({exc}); re-encode it") from None
        if len(tokens) != len(features):
            raise DatasetError(f"{path} has tokens for {len(tokens)} rows but {config.dataset} has {len(features)}; encode this dataset")
        if len(tokens) < 20:
            raise DatasetError(f"{config.dataset} has {len(tokens)} rows; train-ano needs at least 20")
        self.codebooks: list[torch.Tensor] | None = None
        if config.inputs == "tokens" and config.token_embedding == "codebook":
            self.vqvae_model = config.vqvae_model or model_attr
            if not self.vqvae_model:
                raise DatasetError(f"{path} does not say which model encoded it: give --vqvae-model, or token_embedding: learned")
            self.codebooks = _codebooks(self.vqvae_model, tokens.shape[1], self.codes)
        self.tokens = tokens.reshape(len(tokens), -1)
        self.token_sizes = [self.codes[p % len(self.codes)] for p in range(self.tokens.shape[1])]
        order = np.random.default_rng(config.seed).permutation(len(tokens))
        n_test = max(1, int(len(tokens) * config.test_fraction))
        n_val = max(1, int(len(tokens) * config.val_fraction))
        self.test_idx, self.val_idx = np.sort(order[:n_test]), np.sort(order[n_test : n_test + n_val])
        self.train_idx = np.sort(order[n_test + n_val :])
        f_mean, f_std = features[self.train_idx].mean(0), np.maximum(features[self.train_idx].std(0), 1e-6)
        self.features = ((features - f_mean) / f_std).astype(np.float32)
        self.p_mean, self.p_std = parameters[self.train_idx].mean(0), np.maximum(parameters[self.train_idx].std(0), 1e-12)
        self.parameters = parameters
        self.targets = ((parameters - self.p_mean) / self.p_std).astype(np.float32)

    def inputs(self, kind: str) -> torch.Tensor:
        return torch.from_numpy(self.tokens) if kind == "tokens" else torch.from_numpy(self.features)

    def payload(self, config: ANOConfig) -> dict[str, Any]:
        """What rebuilds the model and reads its outputs (``load_regressor``): plain values and tensors."""
        return {
            "model_sizes": self.shape(config),
            "parameter_names": list(self.parameter_names),
            "parameter_mean": torch.from_numpy(np.asarray(self.p_mean, dtype=np.float64)),
            "parameter_std": torch.from_numpy(np.asarray(self.p_std, dtype=np.float64)),
        }

    def shape(self, config: ANOConfig) -> dict[str, Any]:
        """What ``OperatorRegressor`` is built with (recorded in the checkpoint: ``load_regressor``)."""
        common = {"outputs": len(self.parameter_names), "hidden": config.hidden_size, "layers": config.layers, "dropout": config.dropout}
        if config.inputs == "features":
            return {**common, "features": int(self.features.shape[1]), "token_sizes": None, "embedding_dim": 0, "group": 1}
        if self.codebooks is not None:
            return {**common, "features": None, "token_sizes": self.token_sizes, "embedding_dim": int(self.codebooks[0].shape[1]), "group": 3}
        return {**common, "features": None, "token_sizes": self.token_sizes, "embedding_dim": config.embedding_dim, "group": 1}

    def build(self, config: ANOConfig) -> OperatorRegressor:
        model = regressor(self.shape(config))
        if config.inputs == "tokens" and self.codebooks is not None:
            model.load_codebooks(self.codebooks)
            for table in model.embeddings:
                table.weight.requires_grad_(not config.freeze_codebooks)
        return model


def load_regressor(path: str | Path) -> OperatorRegressor:
    """The model of an ano_model.pt (safe load: tensors and plain values only)."""
    from trainer_core import load_checkpoint

    (contents,) = load_checkpoint(path).files.values()
    model = regressor(contents["model_sizes"])
    model.load_state_dict(contents["model_state_dict"])
    return model.eval()


def regressor(shape: dict[str, Any]) -> OperatorRegressor:
    return OperatorRegressor(shape["outputs"], token_sizes=shape["token_sizes"], features=shape["features"],
                             embedding_dim=shape["embedding_dim"] or 1, group=shape["group"], hidden=shape["hidden"],
                             layers=shape["layers"], dropout=shape["dropout"])  # fmt: skip


def _codebooks(model_path: str, categories: int, codes: list[int]) -> list[torch.Tensor]:
    """The codebook of every token position (category-major, levels inner) of the VQ-VAE that
    wrote the tokens, checked against the tokens' codebook sizes."""
    from spinlock_vqvae.dataset import DatasetError
    from spinlock_vqvae.encode import TrainedModel

    trained = TrainedModel(model_path)
    if len(trained.groups) != categories or list(trained.codes) != list(codes):
        raise DatasetError(
            f"{model_path} has {len(trained.groups)} categories and codebooks {list(trained.codes)}, the tokens "
            f"{categories} and {list(codes)}: give the --vqvae-model that encoded them"
        )
    return [level.codebook.detach().clone() for coder in trained.model.coders for level in coder.levels]


def r2_per_parameter(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """R² of each column: 1 - SSE / SST around the column's own mean."""
    sse = ((truth - predicted) ** 2).sum(0)
    sst = ((truth - truth.mean(0)) ** 2).sum(0)
    return 1.0 - sse / np.maximum(sst, 1e-12)


@torch.no_grad()
def _predict(model: OperatorRegressor, x: torch.Tensor, data: ANOData) -> np.ndarray:
    was = model.training
    model.eval()
    out = model(x).numpy() * data.p_std + data.p_mean
    model.train(was)
    return out


def fit(config: ANOConfig, data: ANOData, *, resume: bool = False, progress: bool | None = None, pm: Any = None) -> dict[str, Any]:
    """Train one model (``config.inputs``) through core's run API; its held-out R² per parameter."""
    seed_everything(config.seed)
    model = data.build(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed + 1)
    steps_per_epoch = math.ceil(len(data.train_idx) / config.batch_size)
    out_dir = Path(config.output_dir)
    resume_from = out_dir / MODEL_FILE if resume and (out_dir / MODEL_FILE).is_file() else None
    run = TrainingRun(
        config,
        layout=LAYOUT,
        state=TorchState(model, optimizer, generators={"generator": generator}),
        run_dir=None if resume_from else out_dir,
        resume=resume_from,
        pm=pm,
        sink_options={"console": dict(total_steps=steps_per_epoch * config.epochs, unit="epoch", total=config.epochs, progress=progress)},
    )
    epoch, step = run.position.get("epoch", 0), run.position.get("step", 0)
    best_loss, best_epoch = run.position.get("best_val_loss", math.inf), run.position.get("best_epoch", 0)
    x, y = data.inputs(config.inputs), torch.from_numpy(data.targets)
    train_x, train_y = x[data.train_idx], y[data.train_idx]
    val_x, val_truth = x[data.val_idx], data.parameters[data.val_idx]
    with run:
        while epoch < config.epochs:
            order = torch.randperm(len(train_x), generator=generator)
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                idx = order[start : start + config.batch_size]
                loss = torch.nn.functional.mse_loss(model(train_x[idx]), train_y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
                step += 1
            epoch += 1
            run.log({"loss": total / len(order)}, step=step, epoch=epoch, split="train")
            if epoch % config.eval_every_n_epochs == 0 or epoch == config.epochs:
                predicted = _predict(model, val_x, data)
                val_loss = float((((predicted - val_truth) / data.p_std) ** 2).mean())
                metrics = {"val_loss": val_loss, "r2_mean": float(r2_per_parameter(val_truth, predicted).mean())}
                improved = val_loss < best_loss
                if improved:
                    best_loss, best_epoch = val_loss, epoch
                run.log(metrics, step=step, epoch=epoch, split="val")
                position = {"epoch": epoch, "step": step, "best_val_loss": best_loss, "best_epoch": best_epoch}
                for name in (BEST_FILE, MODEL_FILE) if improved else (MODEL_FILE,):
                    run.save(step=step, epoch=epoch, metrics=metrics, position=position, payload=data.payload(config), name=name)
    best = load_regressor(out_dir / BEST_FILE)  # the weights of the best validation, read back as a user would
    r2 = r2_per_parameter(data.parameters[data.test_idx], _predict(best, x[data.test_idx], data))
    return {"inputs": config.inputs, "status": run.status, "epoch": epoch, "best_epoch": best_epoch, "output_dir": str(out_dir),
            "r2": dict(zip(data.parameter_names, map(float, r2), strict=True)), "r2_mean": float(r2.mean())}  # fmt: skip


def ridge_and_mean(data: ANOData) -> dict[str, dict[str, Any]]:
    """R² of ridge on the raw features (alpha by cross-validation) and of the training mean."""
    from sklearn.linear_model import RidgeCV

    truth = data.parameters[data.test_idx]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(data.features[data.train_idx], data.parameters[data.train_idx])
    out = {}
    for name, predicted in (("ridge_raw_features", ridge.predict(data.features[data.test_idx])),
                            ("mean", np.broadcast_to(data.p_mean, truth.shape))):  # fmt: skip
        r2 = r2_per_parameter(truth, predicted)
        out[name] = {"r2": dict(zip(data.parameter_names, map(float, r2), strict=True)), "r2_mean": float(r2.mean())}
    return out


def train_ano(config: ANOConfig, *, resume: bool = False, progress: bool | None = None, pm: Any = None) -> dict[str, Any]:
    """The token model, then (``baselines``) the raw-feature model in ``RAW_BASELINE_DIR``, ridge
    and the mean; writes ``ano_results.json`` beside ``ano_model.pt`` and returns it."""
    if config.inputs != "tokens":
        raise UsageError("train-ano trains the token model (inputs: tokens); the raw-feature model is its baseline (baselines: true)")
    data = ANOData(config)
    models = {"tokens": fit(config, data, resume=resume, progress=progress, pm=pm)}
    if config.baselines:
        raw = config.model_copy(update={"inputs": "features", "output_dir": str(Path(config.output_dir) / RAW_BASELINE_DIR)})
        models["raw_features"] = fit(raw, data, resume=resume, progress=progress, pm=pm)
        models.update(ridge_and_mean(data))
    results: dict[str, Any] = {
        "tokens_file": config.tokens,
        "dataset": config.dataset,
        "rows": {"train": len(data.train_idx), "validation": len(data.val_idx), "test": len(data.test_idx)},
        "parameters": data.parameter_names,
        "tokens_per_row": data.tokens.shape[1],
        "codebook_sizes": data.codes,
        "models": models,
    }
    if "raw_features" in models:
        results["token_to_raw_r2_ratio"] = models["tokens"]["r2_mean"] / max(models["raw_features"]["r2_mean"], 1e-12)
    atomic_write_json(Path(config.output_dir) / RESULTS_FILE, results)
    return results
