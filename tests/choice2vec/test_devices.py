"""`c2v train --devices N`: each batch sharded over a mesh of N devices (XLA_FLAGS gives a CPU N
devices) trains the parameters one device trains, in one compilation, and resumes on another count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
TINY = ["--set", "model.d_model=32", "--set", "model.ff_dim=64", "--set", "model.window=32", "--set", "model.heads=2",
        "--set", "data.participants=8", "--set", "data.trials_per_participant=96", "--set", "data.cluster_trials=300",
        "--set", "training.warmup_epochs=10", "--set", "training.distractors=40", "--no-progress", "--json"]  # fmt: skip
TWO_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def _train(*args):
    result = subprocess.run([str(BIN / "c2v"), "train", *map(str, args), *TINY], capture_output=True, text=True, timeout=600, env=TWO_DEVICES)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _params(checkpoint: Path):
    import jax
    from flax.serialization import msgpack_restore

    return jax.tree_util.tree_leaves(msgpack_restore((checkpoint / "model_weights.msgpack").read_bytes()))


def test_two_devices_train_what_one_device_trains_in_one_compilation(tmp_path):
    one = _train("--epochs", 40, "--log-every", 10, "--checkpoint-every", 20, "--devices", 1, "--output-dir", tmp_path / "one")
    two = _train("--epochs", 40, "--log-every", 10, "--checkpoint-every", 20, "--devices", 2, "--output-dir", tmp_path / "two")
    assert (one["devices"], two["devices"]) == (1, 2) and one["compilations"] == two["compilations"] == 1
    for a, b in zip(_params(tmp_path / "one" / "checkpoint_epoch_000040"), _params(tmp_path / "two" / "checkpoint_epoch_000040"), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-3)  # Adam magnifies float noise on near-zero gradients
    assert two["final"]["total"] == pytest.approx(one["final"]["total"], rel=1e-4)
    meta = json.loads((tmp_path / "two" / "checkpoint_epoch_000040" / "checkpoint.json").read_text())
    assert meta["parallelism"] == {"devices": 2, "processes": 1, "jax_threefry_partitionable": True}
    # an interruption resumed on the same 2 devices is bit-identical
    import shutil

    shutil.copytree(tmp_path / "two", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoint_epoch_000040")
    again = subprocess.run([str(BIN / "c2v"), "train", "--resume", str(tmp_path / "cut"), "--devices", "2", *TINY], capture_output=True,
                           text=True, timeout=600, env=TWO_DEVICES)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    weights = "checkpoint_epoch_000040/model_weights.msgpack"
    assert (tmp_path / "cut" / weights).read_bytes() == (tmp_path / "two" / weights).read_bytes()
    # another device count continues the same run, and says so
    resumed = subprocess.run([str(BIN / "c2v"), "train", "--resume", str(tmp_path / "two"), "--epochs", "60", "--devices", "1", *TINY],
                             capture_output=True, text=True, timeout=600, env=TWO_DEVICES)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "written on 2 device(s) in 1 process(es), continued on 1" in resumed.stderr
    assert json.loads(resumed.stdout)["epoch"] == 60


def test_a_device_count_that_does_not_fit_is_one_line(tmp_path):
    for devices, seen, needle in ((3, 4, "does not split training.batch_size 16"), (4, 2, "this process sees 2 cpu device(s)")):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={seen}"}
        result = subprocess.run([str(BIN / "c2v"), "train", "--devices", str(devices), "--epochs", "10", "--output-dir", str(tmp_path / "x"),
                                 *TINY], capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
        assert result.returncode == 2 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_write_one_checkpoint_series_that_verifies(tmp_path):
    """jax.distributed on 127.0.0.1, one CPU device each: process 0 writes, both take part in the commit."""
    from trainer_core import list_committed, verify_checkpoint

    port = _free_port()
    args = ["--epochs", "40", "--log-every", "10", "--checkpoint-every", "20", "--output-dir", str(tmp_path / "run"),
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", *TINY]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    procs = [subprocess.Popen([str(BIN / "c2v"), "train", *args, "--process-id", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for i in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    summary = json.loads(outs[0][0])
    assert summary["devices"] == 2 and summary["epoch"] == 40 and outs[1][0] == ""  # process 0 reports
    series = list_committed(tmp_path / "run")
    assert [c.epoch for c in series] == [20, 40]
    assert all(c.extra["world_size"] == 2 and verify_checkpoint(c.path).status == "ok" for c in series)
    meta = json.loads((tmp_path / "run" / "checkpoint_epoch_000040" / "checkpoint.json").read_text())
    assert meta["parallelism"]["processes"] == 2 and "best_accuracy" in series[-1].metrics
