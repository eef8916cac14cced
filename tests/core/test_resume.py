"""Resuming gives bit-identical parameters and losses to an uninterrupted run (on CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from trainer_core.checkpoint import load_checkpoint  # noqa: E402
from trainer_core.example.config import ExampleConfig  # noqa: E402
from trainer_core.example.trainer import train  # noqa: E402
from trainer_core.sinks import read_jsonl  # noqa: E402

CONFIG = dict(epochs=3, samples=600, batch_size=32, checkpoint_every_steps=4, keep_last=2, hidden_size=16, seed=3)


def _final(run_dir):
    summary_ckpt = sorted((run_dir / "checkpoints").iterdir())[-1]
    return load_checkpoint(summary_ckpt)


def _train_losses(run_dir):
    records = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "train"]
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)), "history has duplicated or out-of-order steps"
    return [r["loss"] for r in records]


@pytest.mark.parametrize("stop_at", [15, 30])  # mid-epoch (between checkpoints) and in epoch 2
def test_resume_is_bit_identical(tmp_path, core_pm, stop_at):
    config = ExampleConfig(**CONFIG)
    full = train(config, tmp_path / "full", pm=core_pm, progress=False)
    part = train(config, tmp_path / "part", pm=core_pm, progress=False, max_steps=stop_at)
    assert part["status"] == "interrupted" and part["step"] == stop_at
    resumed = train(config, resume=tmp_path / "part", pm=core_pm, progress=False)
    assert resumed["status"] == "completed" and resumed["step"] == full["step"]

    a, b = _final(tmp_path / "full"), _final(tmp_path / "part")
    for name, tensor in a["model.safetensors"].items():
        assert torch.equal(tensor, b["model.safetensors"][name]), name
    assert a.info.files["model.safetensors"]["sha256"] == b.info.files["model.safetensors"]["sha256"]
    assert a.info.metrics == b.info.metrics
    assert _train_losses(tmp_path / "full") == _train_losses(tmp_path / "part")
    history = json.loads((tmp_path / "part" / "history.json").read_text())
    assert [r["step"] for r in history if r["split"] == "train"] == list(range(1, full["step"] + 1))


def test_resume_after_kill_9_matches_uninterrupted_run(tmp_path):
    """A real crash: SIGKILL the `core example-train` process mid-run, resume, compare."""
    core = os.path.join(os.path.dirname(sys.executable), "core")
    flags = [f"--set={k}={v}" for k, v in CONFIG.items()] + ["--set=async_save=true", "--no-progress"]
    subprocess.run([core, "example-train", "--output", str(tmp_path / "full"), *flags], check=True, capture_output=True)
    proc = subprocess.Popen(
        [core, "example-train", "--output", str(tmp_path / "crash"), *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        records = read_jsonl(tmp_path / "crash" / "metrics.jsonl")
        if records and records[-1]["step"] >= 23:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed: nothing was resumed"
    done = subprocess.run([core, "example-train", "--resume", str(tmp_path / "crash"), *flags[-1:]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = _final(tmp_path / "full"), _final(tmp_path / "crash")
    assert a.info.step == b.info.step
    assert a.info.files["model.safetensors"]["sha256"] == b.info.files["model.safetensors"]["sha256"]
    assert _train_losses(tmp_path / "full") == _train_losses(tmp_path / "crash")


def test_resume_with_another_config_is_refused(tmp_path, core_pm):
    from trainer_core.errors import UsageError

    train(ExampleConfig(**CONFIG), tmp_path / "run", pm=core_pm, progress=False, max_steps=8)
    with pytest.raises(UsageError, match="another config"):
        train(ExampleConfig(**{**CONFIG, "learning_rate": 0.5}), resume=tmp_path / "run", pm=core_pm, progress=False)
