"""Object-storage checkpoints against moto's S3 server on 127.0.0.1, baselines in the same run.

1. Save: ``CheckpointManager.save`` of a 192 MB state (4 safetensors files of 48 MB) to ``s3://``
   (upload under a fresh prefix, sha256 while uploading, conditional manifest, listing for the
   description) against a bare ``s3fs`` ``pipe_file`` of the same four files' bytes. Goal <= 1.3x.
2. Listing: ``core list-checkpoints`` (``find_checkpoints``: one scan, concurrent manifest reads,
   sizes checked from the scan) over 1,000 checkpoints against a bare ``fs.find`` plus ``fs.cat``
   of every manifest (what any listing has to do at least).

Trials interleaved (BENCH_TRIALS, default 5); medians with min..max.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

TRIALS = int(os.environ.get("BENCH_TRIALS", "5"))
LISTED = int(os.environ.get("BENCH_CHECKPOINTS", "1000"))


def main() -> None:
    from trainer_core.checkpoint import CheckpointManager
    from trainer_core.checkpoint import manifest as mf
    from trainer_core.checkpoint.atomic import dumps_json
    from trainer_core.checkpoint.discovery import find_checkpoints
    from trainer_core.checkpoint.serialization import bytes_of
    from trainer_core.testing import LocalS3Server

    with LocalS3Server() as server:
        os.environ.update(server.env)
        bucket = server.create_bucket("bench")
        import s3fs

        fs = s3fs.S3FileSystem()
        rng = np.random.default_rng(0)
        state = {f"part{i}.safetensors": {"w": rng.standard_normal(12 * 1024 * 1024 // 1, dtype=np.float32)} for i in range(4)}
        blobs = {name: bytes_of(name, value) for name, value in state.items()}
        total_mb = sum(len(b) for b in blobs.values()) / 1e6

        manager = CheckpointManager(f"{bucket}/save", package="bench", layout="bench.save")
        core_s, bare_s = [], []
        for trial in range(TRIALS):
            start = time.perf_counter()
            for name, data in blobs.items():
                fs.pipe_file(f"bench/bare/{trial}/{name}", data, max_concurrency=8)
            bare_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            manager.save(state, step=trial)
            core_s.append(time.perf_counter() - start)
            fs.rm(f"bench/bare/{trial}", recursive=True)
            for info in manager.checkpoints()[:-1]:
                from trainer_core.checkpoint import delete_checkpoint

                delete_checkpoint(info)
        ratios = sorted(c / b for c, b in zip(core_s, bare_s, strict=True))
        ratio = statistics.median(ratios)
        report(
            "object_storage_save",
            {"state_mb": round(total_mb, 1), "core_s": statistics.median(core_s), "bare_s3fs_s": statistics.median(bare_s),
             "ratio": ratio, "spread": f"{ratios[0]:.2f}..{ratios[-1]:.2f}", "trials": TRIALS},
            "core save <= 1.3x a bare s3fs put of the same bytes", ratio <= 1.3,
        )  # fmt: skip

        # 1,000 committed checkpoints, written directly (manifest + two small data objects each)
        objects = {}
        for i in range(LISTED):
            base = f"bench/many/run{i // 100:02d}/checkpoints/checkpoint_step_{i:08d}"
            files = {"model.safetensors": b"m" * 64, "config.json": b"{}"}
            entries = {n: {"size": len(d), "sha256": "0" * 64} for n, d in files.items()}
            manifest = mf.build_manifest(package="trainer-core", layout="core.example", layout_version=1, kind="training",
                                         name=f"checkpoint_step_{i:08d}", step=i, epoch=None, metrics={"val_loss": 1.0 / (i + 1)},
                                         config_hash=None, files=entries, extra={})  # fmt: skip
            manifest["data"] = ".data/x"
            objects[f"{base}/manifest.json"] = dumps_json(manifest)
            for name, data in files.items():
                objects[f"{base}/.data/x/{name}"] = data
        fs.pipe(objects)

        def bare() -> int:
            fs.invalidate_cache()
            found = fs.find("bench/many")
            manifests = [p for p in found if p.endswith("/manifest.json")]
            return len(fs.cat(manifests))

        def core() -> int:
            return len(find_checkpoints([f"{bucket}/many"], {}))

        core_l, bare_l = [], []
        for _ in range(TRIALS):
            start = time.perf_counter()
            assert bare() == LISTED
            bare_l.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert core() == LISTED
            core_l.append(time.perf_counter() - start)
        ratios = sorted(c / b for c, b in zip(core_l, bare_l, strict=True))
        ratio = statistics.median(ratios)
        report(
            "object_storage_list",
            {"checkpoints": LISTED, "core_s": statistics.median(core_l), "bare_s": statistics.median(bare_l), "ratio": ratio,
             "spread": f"{ratios[0]:.2f}..{ratios[-1]:.2f}", "trials": TRIALS},
            "core list-checkpoints within 1.5x of a bare listing plus manifest reads", ratio <= 1.5,
        )  # fmt: skip


if __name__ == "__main__":
    main()
