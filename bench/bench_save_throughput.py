"""Save throughput: core's engine (safetensors, sha256, fsync, manifest, atomic rename) against a
raw write of the same bytes (open, write, fsync), measured in one run.

Also measured: the safetensors library's own serialisation of the same tensors, so the figure
separates the format library's cost from the engine's (hashing, fsync, manifest, rename).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, report, timed  # noqa: E402

from trainer_core.checkpoint import commit_directory  # noqa: E402

torch.manual_seed(0)
TENSORS = {f"layer{i}.weight": torch.randn(2048, 2048) for i in range(16)}  # 256 MB
RAW = save(TENSORS)
FIELDS = dict(
    package="bench",
    layout="bench.save",
    layout_version=1,
    kind="training",
    name="c",
    step=1,
    epoch=1,
    metrics={},
    config_hash=None,
    extra={},
)
ROOT = Path(__file__).resolve().parents[1]


def raw_write() -> float:
    with tempfile.TemporaryDirectory(dir=ROOT) as d:

        def write():
            with open(os.path.join(d, "model.safetensors"), "wb") as f:
                f.write(RAW)
                f.flush()
                os.fsync(f.fileno())

        return timed(write)


def engine_save() -> float:
    with tempfile.TemporaryDirectory(dir=ROOT) as d:
        return timed(lambda: commit_directory(Path(d) / "ckpt", {"model.safetensors": TENSORS}, FIELDS))


def engine_save_bytes() -> float:
    with tempfile.TemporaryDirectory(dir=ROOT) as d:
        return timed(lambda: commit_directory(Path(d) / "ckpt", {"model.safetensors": RAW}, FIELDS))


def main() -> None:
    raw_write(), engine_save()
    raw, engine = interleaved(raw_write, engine_save, rounds=5)
    raw2, engine_bytes = interleaved(raw_write, engine_save_bytes, rounds=5)
    serialise = min(timed(lambda: save(TENSORS)) for _ in range(3))
    sha = min(timed(lambda: hashlib.sha256(RAW).digest()) for _ in range(3))
    floor = max(raw2, sha)  # the manifest's sha256 is computed alongside the write: neither can be skipped
    mb = len(RAW) / 2**20
    report(
        "save_throughput",
        {
            "bytes_mb": mb,
            "raw_write_mb_s": mb / raw,
            "engine_mb_s": mb / engine,
            "engine_vs_raw": raw / engine,
            "safetensors_serialise_s": serialise,
            "sha256_alone_s": sha,
            "engine_given_bytes_vs_raw": raw2 / engine_bytes,
            "engine_given_bytes_vs_floor": floor / engine_bytes,
        },
        "engine given bytes within 1.3x of max(raw write, sha256 of the bytes)",
        engine_bytes <= 1.3 * floor,
    )


if __name__ == "__main__":
    main()
