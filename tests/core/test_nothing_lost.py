"""Nothing already saved is lost, and bad input is one line: the core side of the attack report.

Each test names the defect it guards against: two writers in one run directory, a new run among
an old run's checkpoints, pruning around a corrupt checkpoint, malformed manifests, configs with
non-finite numbers or booleans, a loss that turns NaN, and file-system errors in any command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from trainer_core.checkpoint import CheckpointManager, list_committed, verify_checkpoint
from trainer_core.checkpoint.retention import RetentionPolicy
from trainer_core.config import TrainerConfig, load_config
from trainer_core.errors import ConfigError, UsageError

torch = pytest.importorskip("torch")

from trainer_core.example.config import ExampleConfig  # noqa: E402
from trainer_core.example.trainer import train  # noqa: E402

SMALL = dict(epochs=2, samples=300, batch_size=60, async_save=False)


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _tree_state(root):
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- 4: one writer per run directory ---------------------------------------------------------
def test_a_second_writer_in_a_run_directory_gets_one_line_and_exit_2(tmp_path):
    """Two real processes: the first holds the lock while it trains, the second is refused."""
    out = tmp_path / "run"
    holder = textwrap.dedent(
        f"""
        import sys, time
        from trainer_core import TrainingRun
        from trainer_core.example.layout import LAYOUT
        run = TrainingRun(None, layout=LAYOUT, run_dir={str(out)!r}, write_config=False)
        print("locked", flush=True)
        time.sleep(30)
        """
    )
    first = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "locked"
        second = subprocess.run(
            [sys.executable, "-m", "trainer_core.cli", "example-train", "--output", str(out), "--epochs", "1", "--no-progress"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and "in use by a training run" in second.stderr and f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert not (out / "checkpoints").exists() or not list((out / "checkpoints").iterdir())
    finally:
        first.kill()
        first.wait()
    # the lock died with the killed process: the directory is usable at once
    summary = train(ExampleConfig(**SMALL), out, progress=False)
    assert summary["latest_checkpoint"]


# --- 5: a fresh run never writes among another run's checkpoints ----------------------------
def test_a_fresh_run_refuses_a_directory_with_another_runs_checkpoints(tmp_path):
    out = tmp_path / "R"
    train(ExampleConfig(**{**SMALL, "epochs": 3}), out, progress=False)
    before = _tree_state(out / "checkpoints")
    with pytest.raises(UsageError, match=r"already holds \d+ checkpoint\(s\) of another run.*--resume"):
        train(ExampleConfig(**{**SMALL, "epochs": 1, "seed": 5}), out, progress=False)
    assert _tree_state(out / "checkpoints") == before


def test_retention_ranks_only_the_current_runs_checkpoints(tmp_path):
    """In a folder shared by several runs (arc's), a run never deletes another run's checkpoints."""
    policy = lambda: RetentionPolicy(keep_last=1)  # noqa: E731
    old = CheckpointManager(tmp_path, package="p", layout="p.l", retention=policy(), run_id="old")
    for step in (10, 20, 30):
        old.save({"a.json": {}}, step=step)
    new = CheckpointManager(tmp_path, package="p", layout="p.l", retention=policy(), run_id="new")
    for step in (1, 2, 3):
        new.save({"a.json": {}}, step=step, name=f"new_{step}")
    kept = {(c.extra["run_id"], c.step) for c in list_committed(tmp_path)}
    assert kept == {("old", 30), ("new", 3)}


def test_a_resume_continues_the_same_run_id(tmp_path):
    out = tmp_path / "run"
    first = train(ExampleConfig(**SMALL), out, progress=False, max_steps=6)
    run_id = json.loads((out / "checkpoints" / os.path.basename(first["latest_checkpoint"]) / "manifest.json").read_text())["extra"]["run_id"]
    train(ExampleConfig(**SMALL), None, resume=out, progress=False)
    assert len(list_committed(out / "checkpoints")) >= 2
    assert {c.extra.get("run_id") for c in list_committed(out / "checkpoints")} == {run_id}


# --- 6: prune and retention verify what they keep --------------------------------------------
def _three(tmp_path):
    manager = CheckpointManager(tmp_path, package="p", layout="p.l")
    for step in (1, 2, 3):
        manager.save({"w.json": {"values": list(range(50 * step))}}, step=step)
    return manager


def test_prune_never_counts_a_corrupt_checkpoint_as_kept(tmp_path, run_core):
    _three(tmp_path)
    _flip_a_byte(tmp_path / "checkpoint_step_00000003" / "w.json")  # sizes still match: listed ok
    assert [c.status for c in list_committed(tmp_path)] == ["ok", "ok", "ok"]
    result = run_core("prune", tmp_path, "--keep-last", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [os.path.basename(p) for p in report["kept"]] == ["checkpoint_step_00000002"]
    assert [os.path.basename(p) for p in report["corrupt"]] == ["checkpoint_step_00000003"]
    assert verify_checkpoint(tmp_path / "checkpoint_step_00000002").status == "ok"
    assert (tmp_path / "checkpoint_step_00000003").is_dir()  # left for a person to look at


def test_automatic_retention_never_counts_a_corrupt_best_as_kept(tmp_path):
    policy = RetentionPolicy(keep_last=1, keep_best=1, metric="loss")
    manager = CheckpointManager(tmp_path, package="p", layout="p.l", retention=policy)
    for step, loss in [(1, 0.1), (2, 0.5), (3, 0.6)]:
        manager.save({"w.json": {"v": [step] * 40}}, step=step, metrics={"loss": loss})
    assert [c.step for c in list_committed(tmp_path)] == [1, 3]  # the best and the newest
    _flip_a_byte(tmp_path / "checkpoint_step_00000001" / "w.json")  # the best is now damaged
    manager.save({"w.json": {"v": [4] * 40}}, step=4, metrics={"loss": 0.7})
    # without the check, keep {best 1, newest 4} would delete 3: the only sound older checkpoint
    assert [c.step for c in list_committed(tmp_path)] == [1, 3, 4]


# --- 13: malformed manifests are corrupt, names stay inside the checkpoint ---------------------
@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda m: m.update(files=["w.json"]), "not a trainer-core manifest"),
        (lambda m: m.update(step="3"), "'step' must be an integer"),
        (lambda m: m.update(metrics=[1, 2]), "'metrics' must be a mapping"),
        (lambda m: m["files"].update({"../../dev/zero": {"size": 0, "sha256": "x"}}), "not inside the checkpoint"),
        (lambda m: m["files"].update({"/etc/hostname": {"size": 1, "sha256": "x"}}), "not inside the checkpoint"),
        (lambda m: m["files"]["w.json"].update(size="12"), "integer 'size'"),
    ],
)
def test_malformed_manifests_are_listed_corrupt_and_the_rest_still_listed(tmp_path, run_core, change, reason):
    _three(tmp_path)
    path = tmp_path / "checkpoint_step_00000002" / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    listed = list_committed(tmp_path)
    assert sorted(c.status for c in listed) == ["corrupt", "ok", "ok"]
    bad = next(c for c in listed if c.status == "corrupt")
    assert bad.path.endswith("checkpoint_step_00000002") and reason in " ".join(bad.problems)
    shown = run_core("list-checkpoints", tmp_path)
    assert shown.exit_code == 0 and shown.stdout.count("checkpoint_step_0000000") == 3
    verified = run_core("verify", tmp_path)
    assert verified.exit_code == 1 and "Traceback" not in verified.output


def test_a_corrupt_recorded_config_is_caught_by_the_hash_check_before_parsing(tmp_path, run_core):
    out = tmp_path / "run"
    summary = train(ExampleConfig(**SMALL), out, progress=False)
    config = os.path.join(summary["latest_checkpoint"], "config.json")
    with open(config, "r+b") as f:
        f.write(b"{{{{")
    result = run_core("example-train", "--resume", out, "--no-progress")
    assert result.exit_code == 1 and "sha256" in result.output and "corrupt" in result.output


# --- 15: configs refuse non-finite numbers, booleans for numbers, seeds out of range ----------
class _Numbers(TrainerConfig):
    seed: int = 0
    epochs: int = 3
    learning_rate: float = 0.1


@pytest.mark.parametrize(
    "sets, message",
    [
        (["learning_rate=inf"], "not a finite number"),
        (["learning_rate=.nan"], "not a finite number"),
        (["learning_rate=nan"], "not a finite number"),
        (["epochs=true"], "a number is expected, not true/false"),
        (["seed=-1"], "a seed must be between 0 and 4294967295"),
        (["seed=4294967296"], "a seed must be between"),
    ],
)
def test_configs_refuse_non_finite_numbers_booleans_and_bad_seeds(sets, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_Numbers, sets=sets)


def test_dataclass_configs_get_the_same_number_checks():
    from dataclasses import dataclass

    @dataclass
    class Plain:
        rate: float = 0.1
        epochs: int = 2

    with pytest.raises(ConfigError, match="finite"):
        load_config(Plain, overrides={"rate": float("inf")})
    with pytest.raises(ConfigError, match="true/false"):
        load_config(Plain, sets=["epochs=true"])


def test_a_loss_that_becomes_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    from trainer_core import DivergedError, TorchState, TrainingRun
    from trainer_core.example.layout import LAYOUT

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = TrainingRun(ExampleConfig(**SMALL), layout=LAYOUT, state=TorchState(model, optimizer), run_dir=tmp_path / "run")
    with pytest.raises(DivergedError) as caught, run:
        run.log({"loss": 0.5}, step=1, epoch=1)
        good = run.save(step=1, epoch=1)
        run.log({"loss": float("nan")}, step=2, epoch=1)
        run.save(step=2, epoch=1)  # never reached
    message = str(caught.value)
    assert "loss became nan at step 2" in message and good.path in message and "\n" not in message
    assert [c.step for c in list_committed(tmp_path / "run" / "checkpoints")] == [1]
    assert verify_checkpoint(good.path).status == "ok"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


# --- 12: file-system errors are one line with the errno --------------------------------------
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions; the RLIMIT test below covers errno handling")
def test_a_read_only_output_directory_is_one_line(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    result = subprocess.run([sys.executable, "-m", "trainer_core.cli", "example-train", "--output", str(locked / "run")], capture_output=True, text=True)
    assert result.returncode == 1 and "EACCES" in result.stderr and "Traceback" not in result.stderr


def test_a_file_too_large_mid_training_is_one_line_and_keeps_what_was_committed(tmp_path):
    """A real EFBIG: a resumed run hits the file-size limit at its next save."""
    out = tmp_path / "run"
    train(ExampleConfig(**SMALL), out, progress=False, max_steps=6)
    before = _tree_state(out / "checkpoints")
    probe = textwrap.dedent(
        """
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        from trainer_core.cli import main
        sys.argv = ["core", "example-train", "--resume", sys.argv[1], "--no-progress"]
        main()
        """
    )
    result = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "EFBIG" in errors[0] and "Traceback" not in result.stderr
    assert _tree_state(out / "checkpoints") == before


# --- 14: garbage consistent with its manifest is one CheckpointError, never unpickled ----------
@pytest.mark.parametrize("name, payload", [("state.pt", b""), ("state.pt", bytes(range(256)) * 3), ("weights.msgpack", b"\xc1" * 64)])
def test_garbage_files_consistent_with_their_manifest_fail_to_load_in_one_line(tmp_path, name, payload):
    from trainer_core.checkpoint import load_checkpoint
    from trainer_core.checkpoint.atomic import sha256_file
    from trainer_core.errors import CheckpointError

    manager = CheckpointManager(tmp_path, package="p", layout="p.l")
    info = manager.save({"a.json": {"x": 1}}, step=1)
    (tmp_path / os.path.basename(info.path) / name).write_bytes(payload)
    manifest_path = tmp_path / os.path.basename(info.path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][name] = {"size": len(payload), "sha256": sha256_file(tmp_path / os.path.basename(info.path) / name)}
    manifest_path.write_text(json.dumps(manifest))
    assert verify_checkpoint(info.path).status == "ok"  # the hashes agree: only reading tells
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(info.path, framework="numpy" if name.endswith("msgpack") else "pt")
    assert "\n" not in str(caught.value) and name in str(caught.value)


def test_a_missing_resume_path_says_it_does_not_exist(tmp_path, run_core):
    result = run_core("example-train", "--resume", tmp_path / "nope", "--no-progress")
    assert result.exit_code == 2 and "does not exist" in result.output and "never finished" not in result.output
