"""Helpers shared by the benchmarks: interleaved timing and one result line per figure."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

OUT = Path(os.environ.get("BENCH_OUT", Path(__file__).resolve().parents[1] / "bench_out"))


def interleaved(baseline: Callable[[], float], candidate: Callable[[], float], rounds: int = 5, pick=min) -> tuple[float, float]:
    """Run baseline and candidate alternately (the machine is shared and noisy).

    Returns ``pick`` (default: the minimum, the least disturbed round) of each.
    """
    a, b = [], []
    for _ in range(rounds):
        a.append(baseline())
        b.append(candidate())
    return pick(a), pick(b)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(name: str, figures: dict, goal: str, ok: bool) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({**figures, "goal": goal, "met": ok}, indent=2))
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"{name}: {shown} | goal: {goal} -> {'MET' if ok else 'NOT MET'}")
