"""Run every benchmark of bench/ in turn (each prints one line of figures and ratios).

Each benchmark compares against a baseline measured in the same run, because the machines are
shared and noisy. Results are also written to bench_out/<name>.json.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "bench_step_overhead.py",
    "bench_async_save.py",
    "bench_save_throughput.py",
    "bench_list_checkpoints.py",
    "bench_vizwatch.py",
    "bench_vqvae.py",
    "bench_choice2vec.py",
    "bench_arc.py",
    "bench_detector.py",
    "bench_distributed.py",
    "bench_object_storage.py",
]


def main() -> int:
    here = Path(__file__).parent
    failed = 0
    for name in BENCHES:
        done = subprocess.run([sys.executable, str(here / name)])
        failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
