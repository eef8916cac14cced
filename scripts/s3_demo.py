"""`make s3-demo`: start moto's S3 server on 127.0.0.1, train core's example and the vqvae quick
profile into s3://demo-checkpoints, list them with `core list-checkpoints`, stop the server.
Shows the object-storage roots of core's README without any cloud account."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from trainer_core.testing import LocalS3Server

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    dataset = ROOT / "demo_runs" / "datasets" / "demo_1k.h5"
    with LocalS3Server() as server:
        env = {**os.environ, **server.env, "TRAINER_CORE_CACHE": str(ROOT / "demo_runs" / ".s3-cache")}
        bucket = server.create_bucket("demo-checkpoints")
        print(f"moto S3 server on {server.endpoint}; bucket {bucket}", flush=True)
        steps = [
            [BIN / "core", "example-train", "--output", f"{bucket}/example/run1", "--epochs", "3", "--no-progress"],
            [BIN / "core", "example-train", "--resume", f"{bucket}/example/run1", "--epochs", "5", "--no-progress"],
        ]
        if not dataset.exists():
            steps.append([BIN / "spinlock", "generate-dataset", "--samples", "1000", "--output", dataset])
        steps += [
            [BIN / "spinlock", "train-vqvae", "--config", ROOT / "configs/vqvae/quick.json", "--input", dataset,
             "--output", f"{bucket}/vqvae/quick_1k", "--epochs", "10", "--no-progress"],
            [BIN / "core", "list-checkpoints", bucket],
            [BIN / "core", "verify", bucket],
        ]  # fmt: skip
        for command in steps:
            print("$", " ".join(str(c).replace(str(BIN) + "/", "") for c in command), flush=True)
            done = subprocess.run([str(c) for c in command], env=env)
            if done.returncode:
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
