"""Trial files: `c2v generate-data` writes them, `c2v train --data` reads users' own.

Formats: CSV (one row per trial, a header) or HDF5 (one 1-D dataset per column at the root).

| column | type | meaning |
|---|---|---|
| participant | int | participant id |
| trial | int | trial index within the participant (trials are ordered by it) |
| stimulus | 0/1 | side of the correct answer |
| difficulty | float > 0 | coherence of the stimulus (lower is harder) |
| choice | 0/1 | side chosen |
| correct | 0/1 | choice == stimulus |
| rt | float > 0 | reaction time, seconds |
| reward | float | reward received |
| state | optional | 'engaged'/'disengaged' (or 1/0): the hidden state, when known; needed for accuracy |

Generated files also carry the generator's configuration and every participant's parameters
(HDF5 attributes and datasets ``params_gain``, ``params_bound``, ``params_non_decision``; for CSV
a sidecar ``<file>.task.json``), which the oracle baseline needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from choice2vec.task import ParticipantParameters, TaskConfig, Trials
from trainer_core import UsageError, atomic_write_bytes

REQUIRED = Trials.COLUMNS


class DataError(UsageError):
    """A trials file that cannot be used as it is (exit 2, one line)."""


def save_trials(trials: Trials, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {c: getattr(trials, c) for c in REQUIRED}
    if trials.state is not None:
        columns["state"] = trials.true_states
    extra = {}
    if trials.task is not None and trials.params is not None:
        extra = {
            "task": trials.task.to_dict(),
            "params": {k: getattr(trials.params, k).tolist() for k in ("gain", "bound", "non_decision")},
        }
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
        try:
            with h5py.File(tmp, "w") as f:
                for name, values in columns.items():
                    data = values.astype(object) if values.dtype.kind == "U" else values
                    f.create_dataset(name, data=data, dtype=h5py.string_dtype() if values.dtype.kind == "U" else None, compression="gzip")
                if extra:
                    f.attrs["task"] = json.dumps(extra["task"])
                    for k, v in extra["params"].items():
                        f.create_dataset(f"params_{k}", data=np.asarray(v))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path
    if path.suffix != ".csv":
        raise DataError(f"{path}: use a .csv or .h5 file name")
    lines = [",".join(columns)]
    formatted = [values if values.dtype.kind == "U" else np.char.mod("%.6g", values) for values in columns.values()]
    lines += [",".join(row) for row in zip(*formatted, strict=True)]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    if extra:
        atomic_write_bytes(path.with_name(path.name + ".task.json"), json.dumps(extra, indent=1).encode())
    return path


def load_trials(path: str | os.PathLike) -> Trials:
    """Read and validate a trials file (one clear error per problem, naming column and row count)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"trials file not found: {path} (make one with `c2v generate-data --output {path}`)")
    extra = None
    if path.suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                columns = {k: f[k][()] for k in f if not k.startswith("params_")}
                if "task" in f.attrs:
                    extra = {"task": json.loads(f.attrs["task"]), "params": {k[7:]: f[k][()] for k in f if k.startswith("params_")}}
        except OSError as exc:
            raise DataError(f"{path} is not a readable HDF5 file ({exc})") from None
        columns = {k: (np.char.decode(v.astype(bytes)) if v.dtype.kind in "OS" else v) for k, v in columns.items()}
    elif path.suffix == ".csv":
        columns = _read_csv(path)
        sidecar = path.with_name(path.name + ".task.json")
        if sidecar.is_file():
            extra = json.loads(sidecar.read_text())
    else:
        raise DataError(f"{path}: trials files are .csv or .h5")
    return _validated(columns, extra, path)


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    import csv
    import io

    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 CSV file; the README lists the expected columns") from None
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path} is empty; expected a header with {', '.join(REQUIRED)}") from None
        rows = list(reader)
    if any(len(r) != len(header) for r in rows):
        bad = sum(len(r) != len(header) for r in rows)
        raise DataError(f"{path}: {bad} row(s) do not have {len(header)} fields like the header")
    table = np.array(rows, dtype=object).reshape(len(rows), len(header))
    return {name: table[:, i].astype(str) for i, name in enumerate(header)}


def _validated(columns: dict[str, np.ndarray], extra: dict | None, path: Path) -> Trials:
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED and c != "state"]
    if missing:
        hint = f" (unknown column(s) {', '.join(unknown)}: a typo?)" if unknown else ""
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}{hint}; the README lists the expected columns")
    if unknown:
        raise DataError(f"{path}: unknown column(s) {', '.join(unknown)}; expected {', '.join(REQUIRED)} and optionally state")
    values = {}
    for name in REQUIRED:
        try:
            values[name] = np.asarray(columns[name], dtype=np.float64)
        except ValueError:
            raise DataError(f"{path}: column {name} has non-numeric values") from None
        bad = ~np.isfinite(values[name])
        if bad.any():
            raise DataError(f"{path}: column {name} has {bad.sum()} NaN/missing value(s); drop or fill those rows")
    if len(values["participant"]) == 0:
        raise DataError(f"{path} has a header but no trials; give a file with at least 16 trials per participant")
    for name in ("stimulus", "choice", "correct"):
        bad = ~np.isin(values[name], (0, 1))
        if bad.any():
            raise DataError(f"{path}: column {name} must be 0 or 1; {bad.sum()} row(s) are not")
    for name in ("rt", "difficulty"):
        bad = values[name] <= 0
        if bad.any():
            raise DataError(f"{path}: column {name} has {bad.sum()} negative or zero value(s); {name} must be positive")
    state = None
    if "state" in columns:
        raw = np.asarray(columns["state"]).astype(str)
        mapping = {"engaged": 1, "disengaged": 0, "1": 1, "0": 0, "1.0": 1, "0.0": 0}
        bad = ~np.isin(raw, list(mapping))
        if bad.any():
            raise DataError(f"{path}: column state must be engaged/disengaged (or 1/0); {bad.sum()} row(s) are not")
        state = np.array([mapping[s] for s in raw], dtype=np.int64)
    order = np.lexsort((values["trial"], values["participant"]))
    counts = np.unique(values["participant"], return_counts=True)[1]
    if counts.min() < 16:
        raise DataError(f"{path}: every participant needs at least 16 trials; the smallest has {counts.min()}")
    task = params = None
    if extra:
        task = TaskConfig.from_dict(extra["task"])
        params = ParticipantParameters(*(np.asarray(extra["params"][k], dtype=np.float64) for k in ("gain", "bound", "non_decision")))
    ints = ("participant", "trial", "stimulus", "choice", "correct")
    return Trials(
        **{k: (v[order].astype(np.int64) if k in ints else v[order]) for k, v in values.items()},
        state=None if state is None else state[order],
        params=params,
        task=task,
    )
