"""`spinlock encode-to-tokens`: a dataset's rows to token ids with a trained model, streamed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spinlock_vqvae.dataset import DatasetError, FeatureDataset
from spinlock_vqvae.model import CategoricalVQVAE
from spinlock_vqvae.tokenizer import Tokenizer
from trainer_core import UsageError, load_checkpoint


class TrainedModel:
    """A model rebuilt from best_model.pt / last_model.pt (safe load, no unpickling)."""

    def __init__(self, path: str | os.PathLike) -> None:
        loaded = load_checkpoint(path)  # a local path or a URL (s3://...): core reads both
        (contents,) = loaded.files.values()
        sizes = contents["model_sizes"]
        config = contents["config"]
        self.model = CategoricalVQVAE(
            sizes["group_sizes"],
            sizes["latent"],
            sizes["codes"],
            sizes["hidden"],
            config["ema_decay"],
            config["commitment_cost"],
            config["dead_code_threshold"],
        )
        self.model.load_state_dict(contents["model_state_dict"])
        self.model.eval()
        self.groups = [g.numpy() for g in contents["group_indices"]]
        stats = contents["normalization_stats"]
        self.means = [stats[f"mean_{c}"].numpy() for c in range(len(self.groups))]
        self.stds = [stats[f"std_{c}"].numpy() for c in range(len(self.groups))]
        self.feature_names = list(contents["feature_names"])
        self.codes = list(sizes["codes"])
        self.path, self.info, self.metrics = path, loaded.info, contents.get("metrics", {})
        self.tokenizer = Tokenizer(self.model, self.groups, self.means, self.stds)

    def parts(self, rows: np.ndarray) -> list[torch.Tensor]:
        return [
            torch.from_numpy(((rows[:, g] - m) / s).astype(np.float32)) for g, m, s in zip(self.groups, self.means, self.stds, strict=True)
        ]

    def check_names(self, names: list[str], source: str) -> None:
        if names == self.feature_names:
            return
        for i, (a, b) in enumerate(zip(names, self.feature_names, strict=False)):
            if a != b:
                raise DatasetError(
                    f"{source} does not match the model's features: column {i} is {a!r} in the dataset but {b!r} in the model"
                )
        raise DatasetError(f"{source} has {len(names)} features but the model was trained on {len(self.feature_names)}")


def encode(
    dataset: str | os.PathLike,
    model_path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    batch_size: int = 4096,
    progress: bool | None = None,
    force: bool = False,
) -> dict[str, Any]:
    import h5py
    from tqdm.auto import tqdm

    output = Path(output)
    inputs = {"--dataset": Path(dataset)}
    if "://" not in str(model_path):
        inputs["--vqvae-model"] = Path(model_path)
    for flag, path in inputs.items():
        if output.exists() and path.exists() and os.path.samefile(output, path) or output.absolute() == path.absolute():
            raise UsageError(f"--output {output} is the {flag} file itself; write the tokens to another file (--force never replaces an input)")
    if output.exists() and not force:
        raise UsageError(f"{output} already exists; choose another --output or pass --force to replace it")
    trained = TrainedModel(model_path)
    with FeatureDataset(dataset, check_values=False) as data:  # values are checked batch by batch below
        trained.check_names(data.feature_names, str(dataset))
        n, categories = len(data), len(trained.groups)
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".tmp-{output.name}-{os.getpid()}")
        try:
            with (
                h5py.File(tmp, "w") as f,
                torch.no_grad(),
                tqdm(total=n, disable=None if progress is None else not progress, unit="row") as bar,
            ):
                # int16 when every code id fits; light gzip with byte shuffle (ids are small numbers)
                dtype = "int16" if max(trained.codes) <= np.iinfo(np.int16).max else "int32"
                tokens = f.create_dataset(
                    "tokens",
                    shape=(n, categories, 3),
                    dtype=dtype,
                    chunks=(min(n, batch_size), categories, 3),
                    compression="gzip",
                    compression_opts=1,
                    shuffle=True,
                )
                f.create_dataset("codebook_sizes", data=np.array(trained.codes, dtype=np.int32))
                strings = h5py.string_dtype("utf-8")
                f.create_dataset(
                    "category_features",
                    data=np.array([";".join(trained.feature_names[i] for i in g) for g in trained.groups], dtype=object),
                    dtype=strings,
                )
                f.attrs.update(
                    {
                        "model": str(model_path) if "://" in str(model_path) else str(Path(model_path).resolve()),
                        "model_sha256": next(iter(trained.info.files.values()))["sha256"],
                        "model_config_hash": trained.info.config_hash or "",
                        "model_epoch": trained.info.epoch or 0,
                        "dataset": str(Path(dataset).resolve()),
                        "created": datetime.now(UTC).isoformat(timespec="seconds"),
                        "layout": "tokens[sample, category, level]; level 1 coarse, 3 fine",
                    }
                )
                for start, rows in _prefetched(data, batch_size):
                    _check_finite(rows, start, data.feature_names, dataset)
                    tokens[start : start + len(rows)] = trained.tokenizer(rows)
                    bar.update(len(rows))
            os.replace(tmp, output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return {"output": str(output), "samples": n, "categories": categories, "levels": 3, "codebook_sizes": trained.codes}


def _prefetched(data: FeatureDataset, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, rows) batches, the next one read by a background thread while this one is encoded."""
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, len(data), batch_size)
    with ThreadPoolExecutor(1, thread_name_prefix="spinlock-read") as pool:
        pending = pool.submit(data.read, 0, batch_size)
        for start in starts:
            rows = pending.result()
            if start + batch_size < len(data):
                pending = pool.submit(data.read, start + batch_size, start + 2 * batch_size)
            yield start, rows


def _check_finite(rows: np.ndarray, start: int, names: list[str], source: str | os.PathLike) -> None:
    bad = ~np.isfinite(rows)
    if bad.any():
        counts = bad.sum(0)
        listed = ", ".join(f"{names[i]} ({counts[i]})" for i in np.flatnonzero(counts)[:5])
        raise DatasetError(
            f"{source}: NaN/inf values in rows {start}-{start + len(rows) - 1}: {listed}; "
            "fix the data or drop those features before training a model on them"
        )
