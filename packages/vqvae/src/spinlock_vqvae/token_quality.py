"""`spinlock evaluate-tokens`: what the tokens keep of the features, and what they cost.

For each category c (d_c features, normalised with the model's statistics) and overall:

* reconstruction error: MSE between the normalised features and the features decoded from the
  tokens, against two references measured on the same rows: the model's continuous
  reconstruction (the decoder on the unquantised latent: what quantisation costs) and the
  per-feature mean of the evaluated rows (what predicting nothing costs). ``explained`` is
  1 - MSE(tokens) / MSE(mean).
* compression: the features as float32 take 32·d_c bits a row. The token stream takes, per
  level l with K_l codes, log2(K_l) bits a token at fixed length, or H_l = -Σ p_k log2 p_k bits
  a token entropy-coded (p the codes' frequencies on the evaluated rows: what a static per-position
  entropy coder reaches, tables aside). ``compression_ratio`` = 32·d_c / Σ_l H_l (and
  ``compression_ratio_fixed`` with log2 K_l).
* codebook use per level: utilisation = codes used at least once / K_l; perplexity = 2^{H_l}.
* discriminability: how well the tokens tell operators apart. Each operator parameter is cut into
  quartile bins; a ridge classifier learns the bin from the tokens (one-hot) on a seeded 75% of the
  rows and is scored on the other 25%; the same classifier on the raw (normalised) features is the
  reference. Reported: accuracy averaged over parameters (chance 0.25) for tokens and raw, and
  their ratio. The dataset has one rollout per operator, so retrieval of an operator's other
  rollouts is not measurable here.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinlock_vqvae.dataset import DatasetError, FeatureDataset
from spinlock_vqvae.encode import TrainedModel

LEVELS = 3
BINS = 4


def entropy_bits(ids: np.ndarray, size: int) -> float:
    """Empirical entropy in bits of code ids in [0, size)."""
    counts = np.bincount(ids.astype(np.int64), minlength=size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def read_tokens(path: str | os.PathLike, rows: int, model: TrainedModel) -> np.ndarray:
    """Tokens written by `spinlock encode-to-tokens`, checked against the dataset and the model."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"tokens file not found: {path} (make it with `spinlock encode-to-tokens --output {path}`)")
    try:
        with h5py.File(path, "r") as f:
            if "tokens" not in f:
                raise DatasetError(f"{path} has no /tokens: give a file written by `spinlock encode-to-tokens`")
            tokens = np.asarray(f["tokens"][()], dtype=np.int64)
            sizes = [int(k) for k in f["codebook_sizes"][()]] if "codebook_sizes" in f else None
    except OSError as exc:
        raise DatasetError(f"{path} is not a readable HDF5 file ({exc}); re-encode it") from None
    expected = (rows, len(model.groups), LEVELS)
    if tokens.shape != expected:
        raise DatasetError(f"{path} holds tokens of shape {tokens.shape} but the dataset and model need {expected}; encode this dataset with this model")
    if sizes is not None and sizes != list(model.codes):
        raise DatasetError(f"{path} was encoded with codebooks {sizes}, the model has {list(model.codes)}; encode with this model")
    if tokens.min() < 0 or (tokens >= np.array(model.codes)[None, None, :]).any():
        raise DatasetError(f"{path} holds code ids outside the model's codebooks; encode with this model")
    return tokens


def _bins(values: np.ndarray) -> np.ndarray:
    """Quartile bin (0..3) of each value."""
    edges = np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def _one_hot(tokens: np.ndarray, codes: list[int]) -> np.ndarray:
    """(N, positions) code ids, position p with codes[p % LEVELS] codes, as one-hot columns."""
    sizes = [codes[p % LEVELS] for p in range(tokens.shape[1])]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.zeros((len(tokens), int(sum(sizes))), dtype=np.float32)
    out[np.arange(len(tokens))[:, None], tokens + offsets[None]] = 1.0
    return out


def bin_accuracy(inputs: np.ndarray, parameters: np.ndarray, seed: int = 0) -> float:
    """Held-out accuracy of a ridge classifier predicting each parameter's quartile bin, averaged."""
    from sklearn.linear_model import RidgeClassifier

    order = np.random.default_rng(seed).permutation(len(inputs))
    cut = int(0.75 * len(inputs))
    fit, held = order[:cut], order[cut:]
    scores = []
    for p in range(parameters.shape[1]):
        labels = _bins(parameters[:, p])
        model = RidgeClassifier(alpha=1.0).fit(inputs[fit], labels[fit])
        scores.append(float((model.predict(inputs[held]) == labels[held]).mean()))
    return float(np.mean(scores))


def evaluate_tokens(
    dataset: str | os.PathLike, model_path: str | os.PathLike, tokens_path: str | os.PathLike | None = None, *, seed: int = 0
) -> dict[str, Any]:
    """Every measure of the module docstring, per category and overall (JSON-ready)."""
    trained = TrainedModel(model_path)
    with FeatureDataset(dataset) as data:
        trained.check_names(data.feature_names, str(dataset))
        rows = data.read()
        try:
            parameter_names, parameters = data.parameters()
        except DatasetError:
            parameter_names, parameters = [], None
    if len(rows) < 8:
        raise DatasetError(f"{dataset} has {len(rows)} rows; token quality needs at least 8")
    parts = trained.parts(rows)
    with torch.no_grad():
        tokens = read_tokens(tokens_path, len(rows), trained) if tokens_path else trained.tokenizer(rows).astype(np.int64)
        decoded = trained.model.decode_tokens(torch.from_numpy(tokens))
        continuous = [coder.decoder(coder.encoder(x)) for coder, x in zip(trained.model.coders, parts, strict=True)]
    names = _category_names(trained)
    categories, totals = [], {"features": 0, "sq_tokens": 0.0, "sq_continuous": 0.0, "sq_mean": 0.0, "bits_entropy": 0.0, "bits_fixed": 0.0}
    for c, x in enumerate(parts):
        x = x.numpy().astype(np.float64)
        sq_tokens = float(((decoded[c].numpy() - x) ** 2).sum())
        sq_continuous = float(((continuous[c].numpy() - x) ** 2).sum())
        sq_mean = float(((x - x.mean(0)) ** 2).sum())
        levels = []
        for level in range(LEVELS):
            size = trained.codes[level]
            h = entropy_bits(tokens[:, c, level], size)
            levels.append(
                {
                    "level": level + 1,
                    "codes": size,
                    "used": int(len(np.unique(tokens[:, c, level]))),
                    "utilization": len(np.unique(tokens[:, c, level])) / size,
                    "entropy_bits": h,
                    "perplexity": 2.0**h,
                }
            )
        width = x.shape[1]
        bits_entropy = sum(lv["entropy_bits"] for lv in levels)
        bits_fixed = sum(math.log2(lv["codes"]) for lv in levels)
        entry = {
            "category": names[c],
            "features": width,
            "mse_tokens": sq_tokens / x.size,
            "mse_continuous": sq_continuous / x.size,
            "mse_mean": sq_mean / x.size,
            "explained": 1.0 - sq_tokens / max(sq_mean, 1e-12),
            "bits_raw": 32 * width,
            "bits_entropy": bits_entropy,
            "bits_fixed": bits_fixed,
            "compression_ratio": 32 * width / max(bits_entropy, 1e-9),
            "compression_ratio_fixed": 32 * width / bits_fixed,
            "levels": levels,
        }
        if parameters is not None:
            entry["discriminability_tokens"] = bin_accuracy(_one_hot(tokens[:, c, :], trained.codes), parameters, seed)
            entry["discriminability_raw"] = bin_accuracy(x.astype(np.float32), parameters, seed)
        categories.append(entry)
        totals["features"] += width
        totals["sq_tokens"] += sq_tokens
        totals["sq_continuous"] += sq_continuous
        totals["sq_mean"] += sq_mean
        totals["bits_entropy"] += bits_entropy
        totals["bits_fixed"] += bits_fixed
    cells = len(rows) * totals["features"]
    overall: dict[str, Any] = {
        "features": totals["features"],
        "tokens_per_row": len(parts) * LEVELS,
        "mse_tokens": totals["sq_tokens"] / cells,
        "mse_continuous": totals["sq_continuous"] / cells,
        "mse_mean": totals["sq_mean"] / cells,
        "explained": 1.0 - totals["sq_tokens"] / max(totals["sq_mean"], 1e-12),
        "bits_raw": 32 * totals["features"],
        "bits_entropy": totals["bits_entropy"],
        "bits_fixed": totals["bits_fixed"],
        "compression_ratio": 32 * totals["features"] / max(totals["bits_entropy"], 1e-9),
        "compression_ratio_fixed": 32 * totals["features"] / totals["bits_fixed"],
    }
    for level in range(LEVELS):
        overall[f"utilization_level{level + 1}"] = float(np.mean([c["levels"][level]["utilization"] for c in categories]))
        overall[f"perplexity_level{level + 1}"] = float(np.mean([c["levels"][level]["perplexity"] for c in categories]))
    if parameters is not None:
        raw = np.concatenate([p.numpy() for p in parts], 1)
        overall["discriminability_tokens"] = bin_accuracy(_one_hot(tokens.reshape(len(tokens), -1), trained.codes), parameters, seed)
        overall["discriminability_raw"] = bin_accuracy(raw, parameters, seed)
        overall["discriminability_ratio"] = overall["discriminability_tokens"] / max(overall["discriminability_raw"], 1e-12)
    return {
        "dataset": str(dataset),
        "model": str(model_path),
        "tokens": str(tokens_path) if tokens_path else None,
        "rows": len(rows),
        "parameters": parameter_names,
        "discriminability_chance": 1.0 / BINS if parameters is not None else None,
        "overall": overall,
        "categories": categories,
    }


def _category_names(trained: TrainedModel) -> list[str]:
    from spinlock_vqvae.visualization import category_names

    return category_names(trained.groups, trained.feature_names)


def table(report: dict[str, Any]) -> str:
    """The report as a text table: one row per category, then the overall row."""
    from trainer_core import render_table

    has_disc = report["discriminability_chance"] is not None
    headers = ["category", "feat", "mse tokens", "mse cont.", "mse mean", "explained", "bits/row", "compress", "util l1/l2/l3", "perplexity l1/l2/l3"]
    if has_disc:
        headers += ["discr. tokens", "discr. raw"]

    def row(name: str, entry: dict, levels: list[dict] | None) -> list[str]:
        if levels is None:
            util = "/".join(f"{entry[f'utilization_level{i}']:.2f}" for i in (1, 2, 3))
            perp = "/".join(f"{entry[f'perplexity_level{i}']:.1f}" for i in (1, 2, 3))
        else:
            util = "/".join(f"{lv['utilization']:.2f}" for lv in levels)
            perp = "/".join(f"{lv['perplexity']:.1f}" for lv in levels)
        cells = [
            name,
            str(entry["features"]),
            f"{entry['mse_tokens']:.4f}",
            f"{entry['mse_continuous']:.4f}",
            f"{entry['mse_mean']:.4f}",
            f"{entry['explained']:.3f}",
            f"{entry['bits_entropy']:.1f}",
            f"{entry['compression_ratio']:.1f}x",
            util,
            perp,
        ]
        if has_disc:
            cells += [f"{entry['discriminability_tokens']:.3f}", f"{entry['discriminability_raw']:.3f}"]
        return cells

    rows = [row(c["category"], c, c["levels"]) for c in report["categories"]]
    rows.append(row("overall", report["overall"], None))
    lines = [render_table(headers, rows)]
    o = report["overall"]
    lines.append(
        f"{report['rows']} rows; {o['tokens_per_row']} tokens a row: {o['bits_entropy']:.1f} bits entropy-coded "
        f"({o['bits_fixed']:.1f} fixed-length) against {o['bits_raw']} bits of float32 features: "
        f"{o['compression_ratio']:.1f}x ({o['compression_ratio_fixed']:.1f}x fixed)"
    )
    if has_disc:
        lines.append(
            f"discriminability (quartile bin of {len(report['parameters'])} operator parameters, held-out accuracy, chance "
            f"{report['discriminability_chance']:.2f}): tokens {o['discriminability_tokens']:.3f}, raw features "
            f"{o['discriminability_raw']:.3f} (ratio {o['discriminability_ratio']:.2f})"
        )
    return "\n".join(lines)
