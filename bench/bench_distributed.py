"""Data-parallel throughput: the example trainer as 2 ranks x 1 thread (torchrun, gloo) against
1 process x 2 threads on the same machine, the same global batch (256, then 1024), interleaved trials.

Samples/s is read from each run's own metrics.jsonl (first to last training record), so process
start-up and torchrun's rendezvous are not counted. Prints the median ratio and its spread
(min..max over the trials). Goal from the torch.distributed issue: ratio >= 0.9.

Save stall: the time ``run.save()`` holds training (synchronous save of a 48 MB state, the median of 8 saves after a first) in a
2-rank run (the slower rank: rank 0 gathers the parts, writes the manifest and commits) against
one process saving the same state, interleaved; goal <= 1.5x.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

BIN = Path(sys.executable).parent
TRIALS = int(os.environ.get("BENCH_TRIALS", "5"))
BATCHES = (256, 1024)  # global batch: small steps (the all-reduce weighs as much as the step) and larger ones


def args(batch_size: int) -> list[str]:
    return ["--epochs", "2", "--batch-size", str(batch_size), "--set", "samples=30000", "--set", "hidden_size=512",
            "--set", "async_save=false", "--no-progress"]  # fmt: skip


def samples_per_second(run_dir: Path, batch_size: int) -> float:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("split") == "train"]
    steps = train[-1]["step"] - train[0]["step"]
    return steps * batch_size / (train[-1]["time"] - train[0]["time"])


def one_process(root: Path, batch_size: int) -> float:
    out = root / "one"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    subprocess.run([str(BIN / "core"), "example-train", "--output", str(out), *args(batch_size)], check=True, capture_output=True, env=env)
    return samples_per_second(out, batch_size)


def two_ranks(root: Path, batch_size: int) -> float:
    out = root / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "core"), "example-train", "--output", str(out),
               *args(batch_size)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, env=env)
    return samples_per_second(out, batch_size)


STALL_SCRIPT = """
import json, statistics, sys, time, torch
from trainer_core import TorchState, TrainingRun
from trainer_core.example.config import ExampleConfig
from trainer_core.example.layout import LAYOUT
model = torch.nn.Sequential(*[torch.nn.Linear(2048, 2048) for _ in range(3)])  # 48 MB of weights
run = TrainingRun(ExampleConfig(async_save=False), layout=LAYOUT, state=TorchState(model), run_dir=sys.argv[1])
stalls = []
with run:
    for step in range(1, 10):
        start = time.perf_counter()
        run.save(step=step, epoch=step)
        stalls.append(time.perf_counter() - start)
print(json.dumps({"rank": run.world.rank, "stall": statistics.median(stalls[1:])}), flush=True)  # the 8 warm saves
"""


def save_stall(root: Path, ranks: int) -> float:
    script = root / "stall.py"
    script.write_text(STALL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={ranks}"] if ranks > 1 else [sys.executable]
    out = subprocess.run([*launcher, str(script), str(root / f"stall{ranks}")], check=True, capture_output=True, text=True, env=env)
    return max(json.loads(line)["stall"] for line in out.stdout.splitlines() if line.startswith("{"))


def interleaved(single, pair) -> dict:
    """TRIALS alternating runs of ``single(root)`` and ``pair(root)``: medians and the ratio's spread."""
    ratios, singles, pairs = [], [], []
    for _ in range(TRIALS):
        with tempfile.TemporaryDirectory() as tmp:
            singles.append(single(Path(tmp)))
            pairs.append(pair(Path(tmp)))
        ratios.append(pairs[-1] / singles[-1])
    return {"single": statistics.median(singles), "pair": statistics.median(pairs), "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios), "trials": TRIALS}  # fmt: skip


def main() -> None:
    stall = interleaved(lambda root: save_stall(root, 1), lambda root: save_stall(root, 2))
    report(
        "distributed_save_stall",
        {"one_process_stall_s": stall.pop("single"), "two_ranks_stall_s": stall.pop("pair"), **stall},
        "a 2-rank save stalls training <= 1.5 x a 1-process save of the same state",
        stall["ratio_median"] <= 1.5,
    )
    for batch_size in BATCHES:
        speed = interleaved(lambda root: one_process(root, batch_size), lambda root: two_ranks(root, batch_size))  # noqa: B023
        report(
            f"distributed_throughput_batch{batch_size}",
            {"one_process_2_threads_samples_per_s": speed.pop("single"), "two_ranks_1_thread_samples_per_s": speed.pop("pair"), **speed},
            f"2 ranks x 1 thread >= 0.9 x 1 process x 2 threads (example MLP, hidden 512, global batch {batch_size})",
            speed["ratio_median"] >= 0.9,
        )


if __name__ == "__main__":
    main()
