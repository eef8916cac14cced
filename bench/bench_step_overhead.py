"""Per-step overhead of core (metrics logger with its JSONL file, console sink, plugin hooks)
against the same hand-written torch loop, measured in one run, interleaved.

Both loops train the same MLP on the same batches and call loss.item() every step (a hand-written
loop prints or accumulates its loss too); the core loop additionally logs every step through
MetricsLogger to metrics.jsonl and the console sink (bar off, as in CI logs).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, report, timed  # noqa: E402

from trainer_core.metrics import MetricsLogger, build_sinks  # noqa: E402
from trainer_core.plugins import collect_registry, get_plugin_manager  # noqa: E402

STEPS = 300
torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(256, 512)
y = torch.randint(0, 10, (256,))


def make():
    model = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.CrossEntropyLoss()


def hand_loop() -> float:
    model, opt, loss_fn = make()
    total = 0.0

    def run():
        nonlocal total
        for _ in range(STEPS):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item()

    return timed(run) / STEPS


def core_loop() -> float:
    model, opt, loss_fn = make()
    pm = get_plugin_manager(warn=False)
    registry = collect_registry(pm)
    with tempfile.TemporaryDirectory() as run_dir:
        sinks = build_sinks(registry.sinks, run_dir, {"console": {"total_steps": STEPS, "progress": False}}, disabled=["tensorboard"])
        logger = MetricsLogger(run_dir, sinks)

        def run():
            for step in range(1, STEPS + 1):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                logger.log({"loss": loss.item()}, step=step, epoch=1)

        elapsed = timed(run)
        logger.close()
    return elapsed / STEPS


def log_call_cost() -> float:
    """Seconds per MetricsLogger.log call alone (precise where loop timings are noisy)."""
    pm = get_plugin_manager(warn=False)
    registry = collect_registry(pm)
    with tempfile.TemporaryDirectory() as run_dir:
        sinks = build_sinks(registry.sinks, run_dir, {"console": {"total_steps": 20000, "progress": False}}, disabled=["tensorboard"])
        logger = MetricsLogger(run_dir, sinks)
        elapsed = timed(lambda: [logger.log({"loss": 0.5}, step=i, epoch=1) for i in range(1, 20001)])
        logger.close()
    return elapsed / 20000


def main() -> None:
    hand_loop(), core_loop()  # warm up allocator and threads
    hand, core = interleaved(hand_loop, core_loop, rounds=9)
    per_log = log_call_cost()
    measured = (core - hand) / hand * 100
    direct = per_log / hand * 100
    report(
        "step_overhead",
        {
            "hand_ms_per_step": hand * 1e3,
            "core_ms_per_step": core * 1e3,
            "ratio": core / hand,
            "loop_overhead_pct": measured,
            "log_call_us": per_log * 1e6,
            "log_cost_pct_of_step": direct,
        },
        "core's per-step overhead below 1% (loop ratio and the direct cost of one log call)",
        measured < 1.0 and direct < 1.0,
    )


if __name__ == "__main__":
    main()
