"""kill -9 at random moments during saves never leaves an unloadable newest checkpoint."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from trainer_core.checkpoint import describe_checkpoint, list_committed, load_checkpoint, recover
from trainer_core.checkpoint.discovery import find_checkpoints

SAVER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from trainer_core.checkpoint import CheckpointManager
    from trainer_core.checkpoint.retention import RetentionPolicy

    directory, mode = sys.argv[1], sys.argv[2]
    single = mode.startswith("file")
    fixed = mode.endswith("overwrite")
    manager = CheckpointManager(directory, package="crash", layout="crash.test", single_file=single,
                                name_format="ckpt_{step:06d}" + (".npz" if single else ""),
                                retention=RetentionPolicy(keep_last=2))
    latest = manager.latest()
    step = (latest.step if latest else 0) + 1
    print("ready", flush=True)
    while True:
        weights = np.full(400_000, step, dtype=np.float32)  # 1.6 MB: the write takes a while
        name = ("last.npz" if single else "last") if fixed else None
        if single:
            manager.save({"weights.npz": {"w": weights}}, step=step, name=name)
        else:
            manager.save({"weights.npz": {"w": weights}, "meta.json": {"step": step}}, step=step, name=name)
        print(step, flush=True)
        step += 1
    """
)


def _check_consistent(directory, committed_steps):
    """Every checkpoint that looks complete loads and holds what its manifest says."""
    newest = None
    for info in find_checkpoints([directory], {}):
        if info.status != "ok":
            continue
        loaded = load_checkpoint(info.path)  # re-hashes every file
        arrays = next(v for k, v in loaded.files.items() if k.endswith(".npz"))
        # load settles a save cut off between its renames, so compare with what it loaded
        assert np.all(arrays["w"] == loaded.info.step), f"{info.path} holds data of another step"
        newest = max(newest or 0, loaded.info.step)
    if committed_steps:
        assert newest is not None and newest >= committed_steps[-1], "the last committed checkpoint is gone"


@pytest.mark.parametrize("mode", ["dir", "dir-overwrite", "file", "file-overwrite"])
def test_kill_9_during_saves(tmp_path, mode):
    rng = random.Random(f"crash-{mode}")
    directory = tmp_path / "ckpts"
    committed: list[int] = []
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(directory), mode], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        committed += [int(line) for line in out.split() if line.isdigit()]
        # before any recovery: nothing that looks complete is broken
        _check_consistent(directory, committed)
        recover(directory)
        leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".")]
        assert not leftovers, leftovers
        _check_consistent(directory, committed)
    assert committed, "the saver never committed anything: the test did not exercise saves"
    if mode.endswith("overwrite"):
        name = "last.npz" if mode.startswith("file") else "last"
        assert describe_checkpoint(directory / name).status == "ok"
    else:
        assert all(c.status == "ok" for c in list_committed(directory))
