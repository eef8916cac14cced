"""torchrun runs the example trainer data-parallel, and a multi-rank checkpoint commits only with
every rank's part (CPU, gloo, two ranks, one thread each)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from trainer_core import list_committed, verify_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TINY = ["--epochs", "3", "--set", "samples=600", "--set", "dropout=0", "--set", "async_save=false", "--no-progress"]


def _torchrun(*args, env, timeout=300):
    """``torchrun`` two ranks of ``args`` in ``env`` (the ``torchrun_env`` fixture, plus what a test adds)."""
    return subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def _weights(checkpoint):
    from safetensors.torch import load_file

    return load_file(Path(checkpoint) / "model.safetensors")


def test_two_ranks_train_like_one_process_and_commit_one_series(tmp_path, torchrun_env):
    result = _torchrun(BIN / "core", "example-train", "--output", tmp_path / "two", *TINY, env=torchrun_env)
    assert result.returncode == 0, result.stderr[-2000:]
    single = subprocess.run([str(BIN / "core"), "example-train", "--output", str(tmp_path / "one"), *TINY], capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    two = list_committed(tmp_path / "two" / "checkpoints")
    one = list_committed(tmp_path / "one" / "checkpoints")
    assert [c.step for c in two] == [c.step for c in one] and all(c.status == "ok" for c in two)
    for checkpoint in two:
        assert verify_checkpoint(checkpoint.path).status == "ok"
        assert checkpoint.extra["world_size"] == 2 and checkpoint.extra["rank_files"]["1"] == ["trainer_state.rank00001.pt"]
    a, b = _weights(two[-1].path), _weights(one[-1].path)
    for name in a:  # the same global batch of 64: 2 x 32 with averaged gradients = 1 x 64
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    shown = subprocess.run([str(BIN / "core"), "show", two[-1].path], capture_output=True, text=True).stdout
    assert "world_size: 2" in shown
    assert (tmp_path / "two" / "metrics.jsonl").is_file() and json.loads((tmp_path / "two" / "run.json").read_text())["status"] == "completed"
    # a 2-rank checkpoint resumes in one process (and trains longer)
    resumed = subprocess.run([str(BIN / "core"), "example-train", "--resume", str(tmp_path / "two"), "--epochs", "4", "--no-progress"],
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "written by 2 rank(s)) with 1: training continues the same global sample order" in resumed.stderr
    assert list_committed(tmp_path / "two" / "checkpoints")[-1].extra.get("world_size") is None  # written by one process


def test_resume_mid_epoch_at_the_same_world_size_is_bit_identical(tmp_path, torchrun_env):
    every = [*TINY, "--set", "checkpoint_every_steps=4"]
    straight = _torchrun(BIN / "core", "example-train", "--output", tmp_path / "straight", *every, env=torchrun_env)
    assert straight.returncode == 0, straight.stderr[-2000:]
    cut = _torchrun(BIN / "core", "example-train", "--output", tmp_path / "cut", *every, "--max-steps", "15", env=torchrun_env)
    assert cut.returncode == 0, cut.stderr[-2000:]
    newest = list_committed(tmp_path / "cut" / "checkpoints")[-1]
    assert newest.step == 12  # mid-epoch (10 batches an epoch): the global batch index carries the position
    resumed = _torchrun(BIN / "core", "example-train", "--resume", tmp_path / "cut", *every, env=torchrun_env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = _weights(list_committed(tmp_path / "straight" / "checkpoints")[-1].path)
    b = _weights(list_committed(tmp_path / "cut" / "checkpoints")[-1].path)
    assert all(torch.equal(a[name], b[name]) for name in a)


def _rank_script(width: int, after_first_save: str) -> str:
    """A script for each rank: a Linear(width, width) run that saves once, then ``after_first_save``."""
    head = textwrap.dedent(
        f"""
        import os, signal, sys, time, torch
        import trainer_core.checkpoint.commit as commit
        from trainer_core import TorchState, TrainingRun
        from trainer_core.example.config import ExampleConfig
        from trainer_core.example.layout import LAYOUT
        model = torch.nn.Linear({width}, {width})
        run = TrainingRun(ExampleConfig(), layout=LAYOUT, state=TorchState(model), run_dir=sys.argv[1])
        with run:
            run.save(step=1, epoch=1)
        """
    )
    return head + textwrap.indent(textwrap.dedent(after_first_save), "    ")


MISSING_RANK = _rank_script(
    2,
    """
    if run.world.rank == 1:
        time.sleep(20)  # never reaches the second save's barrier
        sys.exit(0)
    try:
        run.save(step=2, epoch=1)
    except Exception as exc:
        print("RANK0:", type(exc).__name__, exc, flush=True)
        sys.exit(3)
    """,
)


def test_a_rank_that_never_arrives_fails_the_save_within_the_timeout(tmp_path, torchrun_env):
    script = tmp_path / "missing_rank.py"
    script.write_text(MISSING_RANK)
    result = _torchrun(script, tmp_path / "run", env={**torchrun_env, "TRAINER_CORE_DIST_TIMEOUT": "5"}, timeout=120)
    assert "RANK0: CheckpointError" in result.stdout and "did not arrive within 5 s" in result.stdout, result.stdout + result.stderr[-2000:]
    committed = list_committed(tmp_path / "run" / "checkpoints")
    assert [c.step for c in committed] == [1] and verify_checkpoint(committed[0].path).status == "ok"
    assert not [p for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.startswith(".tmp-")]  # rank 0 cleaned up


KILLED_RANK = _rank_script(
    256,
    """
    if run.world.rank == 1:
        def dying(path, data):  # half of this rank's part is on disk when the kernel kills it
            with open(path, "wb") as f:
                f.write(b"x" * 100)
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        commit.write_durable = dying
    with torch.no_grad():
        model.weight.add_(1.0)
    run.save(step=2, epoch=2)
    """,
)


def test_sigkill_of_one_rank_during_a_save_leaves_the_previous_checkpoint(tmp_path, torchrun_env):
    """torchrun stops the other rank; no manifest exists without every rank's files, the
    previous checkpoint verifies and resumes, and the next start clears the half-written save."""
    script = tmp_path / "killed_rank.py"
    script.write_text(KILLED_RANK)
    result = _torchrun(script, tmp_path / "run", env={**torchrun_env, "TRAINER_CORE_DIST_TIMEOUT": "20"}, timeout=180)
    assert result.returncode != 0
    folder = tmp_path / "run" / "checkpoints"
    committed = list_committed(folder)
    assert [c.step for c in committed] == [1] and verify_checkpoint(committed[0].path).status == "ok"
    assert not (folder / "checkpoint_step_000002").exists()
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    assert all(not (p / "manifest.json").exists() for p in leftovers)
    from trainer_core import TorchState, TrainingRun
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.layout import LAYOUT

    model = torch.nn.Linear(256, 256)
    with TrainingRun(ExampleConfig(), layout=LAYOUT, state=TorchState(model), resume=tmp_path / "run") as run:
        assert run.position["step"] == 1 and run.resumed.extra["world_size"] == 2
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]  # the dead save was cleared
