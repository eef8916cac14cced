"""Spinlock HDF5 datasets: writing generated ones, and reading any one safely in chunks.

Layout (all datasets chunked and gzip-compressed):

| path                    | shape     | type     | meaning                                        |
|-------------------------|-----------|----------|------------------------------------------------|
| `/features`             | (N, F)    | float32  | per-sample operator behavioural features       |
| `/feature_names`        | (F,)      | utf-8    | one name per column, `family.stat.channel.win` |
| `/feature_families`     | (F,)      | utf-8    | family of each column (optional)               |
| `/operator_parameters`  | (N, P)    | float32  | the sampled operator parameters (optional)     |
| `/parameter_names`      | (P,)      | utf-8    | names of those parameters (optional)           |

Root attributes hold the provenance: `generator`, `generator_version`, `seed`, `created`,
`samples`, `channels`, `grid_size`, `steps`, `kernel`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from trainer_core import UsageError

FEATURES = "features"
NAMES = "feature_names"
FAMILIES = "feature_families"
PARAMETERS = "operator_parameters"
PARAMETER_NAMES = "parameter_names"
GENERATOR_VERSION = 1


class DatasetError(UsageError):
    """A dataset file that cannot be used as it is (exit code 2, one line)."""


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def generate(
    path: str | os.PathLike,
    samples: int,
    seed: int = 0,
    *,
    batch: int = 256,
    progress: bool | None = None,
    spec: Any = None,
    workers: int | None = None,
) -> Path:
    """Roll out ``samples`` random operators and write their features to ``path`` (atomically).

    Batches of ``batch`` operators are rolled out by ``workers`` processes (default: one per
    available core, each with one torch thread) and written in order. Every operator draws from
    its own seed, so the file's values are the same whatever the batch size or worker count."""
    import h5py
    from tqdm.auto import tqdm

    from spinlock_vqvae import operators
    from spinlock_vqvae.features import feature_names

    spec = spec or operators.RolloutSpec()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names, families = feature_names(spec.channels)
    rng = np.random.default_rng(seed)
    params = operators.sample_parameters(samples, rng)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    strings = h5py.string_dtype("utf-8")
    try:
        with h5py.File(tmp, "w") as f:
            chunk = (min(samples, 1024), len(names))
            features = f.create_dataset(
                FEATURES, shape=(samples, len(names)), dtype="float32", chunks=chunk, compression="gzip", compression_opts=4, shuffle=True
            )
            f.create_dataset(NAMES, data=np.array(names, dtype=object), dtype=strings)
            f.create_dataset(FAMILIES, data=np.array(families, dtype=object), dtype=strings)
            f.create_dataset(PARAMETERS, data=params, chunks=(min(samples, 1024), params.shape[1]), compression="gzip")
            f.create_dataset(PARAMETER_NAMES, data=np.array(operators.PARAMETER_NAMES, dtype=object), dtype=strings)
            f.attrs.update(
                {
                    "generator": "spinlock-vqvae stochastic conv operators",
                    "generator_version": GENERATOR_VERSION,
                    "seed": seed,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "samples": samples,
                    "channels": spec.channels,
                    "grid_size": spec.size,
                    "steps": spec.steps,
                    "kernel": spec.kernel,
                }
            )
            bounds = [(start, min(samples, start + batch)) for start in range(0, samples, batch)]
            jobs = [(params[a:b], spec, operators.operator_seeds(seed, a, b)) for a, b in bounds]
            with tqdm(total=samples, disable=None if progress is None else not progress, unit="op", desc="operators") as bar:
                for (start, stop), rows in zip(bounds, _rolled_out(jobs, workers), strict=True):
                    features[start:stop] = rows
                    bar.update(stop - start)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _features_of(params: np.ndarray, spec: Any, seeds: list[int]) -> np.ndarray:
    """One batch of operators rolled out and reduced to their feature rows."""
    import torch

    from spinlock_vqvae import operators
    from spinlock_vqvae.features import extract

    with torch.no_grad():
        return extract(operators.rollout(params, spec, seeds)).numpy()


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _rolled_out(jobs: list[tuple], workers: int | None) -> Iterator[np.ndarray]:
    """Feature rows of each job, in order: in this process for one worker (or one batch), else in
    a pool of spawned processes (torch is not fork-safe once its thread pool has started) with at
    most two batches per worker in flight, so memory stays bounded at any dataset size."""
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    workers = min(workers or available_cores(), len(jobs))
    if workers <= 1:
        yield from (_features_of(*job) for job in jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_one_thread) as pool:
        pending: deque = deque()
        queued = iter(jobs)
        for job in queued:
            pending.append(pool.submit(_features_of, *job))
            if len(pending) >= 2 * workers:
                break
        while pending:
            rows = pending.popleft().result()
            job = next(queued, None)
            if job is not None:
                pending.append(pool.submit(_features_of, *job))
            yield rows


@dataclass
class Validation:
    """What reading found: names of features with NaN/inf and how many values each."""

    invalid: dict[str, int] = field(default_factory=dict)

    def describe(self, limit: int = 5) -> str:
        shown = ", ".join(f"{name} ({count})" for name, count in list(self.invalid.items())[:limit])
        more = f" and {len(self.invalid) - limit} more" if len(self.invalid) > limit else ""
        return f"{len(self.invalid)} feature(s) have NaN/inf values: {shown}{more}"


class FeatureDataset:
    """A validated, lazily read Spinlock dataset. Nothing but the names is loaded up front.

    ``drop_invalid=True`` drops the features (columns) with NaN/inf values instead of refusing
    the file. Batches are read in HDF5 chunk order, so memory stays at one batch.
    """

    def __init__(self, path: str | os.PathLike, *, drop_invalid: bool = False, check_values: bool = True, chunk_rows: int = 8192) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"dataset not found: {self.path} (make one with `spinlock generate-dataset --output {self.path}`)")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise DatasetError(f"{self.path} is not a readable HDF5 file ({exc}); regenerate or re-copy it") from None
        f = self._file
        for key in (FEATURES, NAMES):
            if key not in f:
                raise DatasetError(f"{self.path} has no /{key} dataset; expected the layout in the spinlock-vqvae README")
        self.features = f[FEATURES]
        if self.features.ndim != 2:
            raise DatasetError(f"{self.path}: /{FEATURES} must be 2-D (samples x features), found shape {self.features.shape}")
        if self.features.dtype.kind not in "fiu":
            raise DatasetError(f"{self.path}: /{FEATURES} must hold numbers (float32), not {self.features.dtype}; regenerate the dataset")
        self.all_names = [n.decode() if isinstance(n, bytes) else str(n) for n in f[NAMES][()]]
        if len(self.all_names) != self.features.shape[1]:
            raise DatasetError(
                f"{self.path}: /{NAMES} has {len(self.all_names)} names but /{FEATURES} has {self.features.shape[1]} columns"
            )
        if self.features.shape[0] == 0:
            raise DatasetError(f"{self.path}: /{FEATURES} has no samples")
        self.chunk_rows = chunk_rows
        self.columns = np.arange(len(self.all_names))
        self.validation = self._scan() if check_values else Validation()
        if self.validation.invalid:
            if not drop_invalid:
                raise DatasetError(f"{self.path}: {self.validation.describe()}; fix the data or pass --drop-invalid-features to drop them")
            bad = set(self.validation.invalid)
            self.columns = np.array([i for i, n in enumerate(self.all_names) if n not in bad])

    def _scan(self) -> Validation:
        counts = np.zeros(len(self.all_names), dtype=np.int64)
        for start in range(0, len(self), self.chunk_rows):
            block = self.features[start : start + self.chunk_rows]
            counts += (~np.isfinite(block)).sum(0)
        return Validation({self.all_names[i]: int(c) for i, c in enumerate(counts) if c})

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def feature_names(self) -> list[str]:
        return [self.all_names[i] for i in self.columns]

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in self._file.attrs.items()}

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of the kept columns, as float32."""
        block = self.features[start:stop]
        return np.ascontiguousarray(block[:, self.columns] if len(self.columns) != block.shape[1] else block, dtype=np.float32)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """Rows at sorted ``indices`` (read chunk by chunk)."""
        indices = np.asarray(indices)
        out = np.empty((len(indices), len(self.columns)), dtype=np.float32)
        for start in range(0, len(self), self.chunk_rows):
            mask = (indices >= start) & (indices < start + self.chunk_rows)
            if mask.any():
                out[mask] = self.read(start, start + self.chunk_rows)[indices[mask] - start]
        return out

    def parameters(self) -> tuple[list[str], np.ndarray]:
        """The operator parameters of every row (``/operator_parameters``) and their names."""
        if PARAMETERS not in self._file or PARAMETER_NAMES not in self._file:
            raise DatasetError(
                f"{self.path} has no /{PARAMETERS} and /{PARAMETER_NAMES}: give a dataset written by "
                "`spinlock generate-dataset` (or add the operator parameters of each row)"
            )
        values = np.asarray(self._file[PARAMETERS][()], dtype=np.float32)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in self._file[PARAMETER_NAMES][()]]
        if values.ndim != 2 or values.shape != (len(self), len(names)):
            raise DatasetError(f"{self.path}: /{PARAMETERS} is {values.shape}, expected ({len(self)}, {len(names)})")
        if not np.isfinite(values).all():
            raise DatasetError(f"{self.path}: /{PARAMETERS} holds NaN/inf values; regenerate or repair the dataset")
        return names, values

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        for start in range(0, len(self), batch_size):
            yield self.read(start, start + batch_size)

    def column_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature mean and std in one streaming pass (Chan's parallel update)."""
        n, mean, m2 = 0, np.zeros(len(self.columns)), np.zeros(len(self.columns))
        for block in self.batches(self.chunk_rows):
            k = len(block)
            b_mean = block.mean(0, dtype=np.float64)
            b_m2 = ((block - b_mean) ** 2).sum(0, dtype=np.float64)
            delta = b_mean - mean
            total = n + k
            mean = mean + delta * k / total
            m2 = m2 + b_m2 + delta**2 * n * k / total
            n = total
        return mean, np.sqrt(m2 / max(n - 1, 1))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FeatureDataset:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
