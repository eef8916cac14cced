"""The checkpoint engine: atomic commits, recovery after crashes, async saves, safe loading."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

from trainer_core.checkpoint import (
    CheckpointManager,
    commit_directory,
    commit_file,
    describe_checkpoint,
    load_checkpoint,
    recover,
    verify_checkpoint,
)
from trainer_core.checkpoint import manifest as mf
from trainer_core.checkpoint.atomic import temp_sibling
from trainer_core.errors import CheckpointError, CorruptCheckpointError

FIELDS = dict(
    package="pkg",
    layout="pkg.test",
    layout_version=3,
    kind="training",
    name="x",
    step=7,
    epoch=2,
    metrics={"val_loss": 0.5},
    config_hash="abc",
    extra={"note": "hi"},
)


def test_directory_commit_writes_files_and_a_complete_manifest(tmp_path):
    target = commit_directory(tmp_path / "ckpt", {"weights.npz": {"w": np.arange(10.0)}, "state.json": {"lr": 0.1}}, FIELDS)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["step"] == 7 and manifest["epoch"] == 2 and manifest["layout_version"] == 3
    assert manifest["metrics"] == {"val_loss": 0.5} and manifest["config_hash"] == "abc"
    assert set(manifest["files"]) == {"weights.npz", "state.json"}
    for name, entry in manifest["files"].items():
        assert (target / name).stat().st_size == entry["size"]
    assert "python" in manifest["library_versions"] and "numpy" in manifest["library_versions"]
    assert verify_checkpoint(target).status == "ok"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_replacing_a_directory_checkpoint_keeps_exactly_the_new_one(tmp_path):
    commit_directory(tmp_path / "last", {"a.json": {"v": 1}}, FIELDS)
    commit_directory(tmp_path / "last", {"a.json": {"v": 2}}, {**FIELDS, "step": 8})
    assert load_checkpoint(tmp_path / "last")["a.json"] == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_single_file_checkpoint_has_a_sidecar_manifest(tmp_path):
    target = commit_file(tmp_path / "best_model.npz", {"w": np.ones(3)}, FIELDS)
    assert (tmp_path / "best_model.npz.manifest.json").exists()
    info = describe_checkpoint(target)
    assert info.status == "ok" and info.step == 7 and list(info.files) == ["best_model.npz"]
    assert np.array_equal(load_checkpoint(target)["best_model.npz"]["w"], np.ones(3))


def test_truncated_file_is_corrupt_and_load_refuses_it(tmp_path):
    target = commit_directory(tmp_path / "c", {"w.npz": {"w": np.arange(1000.0)}}, FIELDS)
    with open(target / "w.npz", "r+b") as f:
        f.truncate(100)
    info = describe_checkpoint(target)
    assert info.status == "corrupt" and "w.npz" in info.problems[0]
    with pytest.raises(CorruptCheckpointError, match="w.npz"):
        load_checkpoint(target)


def test_same_size_damage_is_caught_by_hash_verification(tmp_path):
    target = commit_directory(tmp_path / "c", {"blob.bin": b"a" * 64}, FIELDS)
    (target / "blob.bin").write_bytes(b"b" * 64)
    assert describe_checkpoint(target).status == "ok"  # sizes only: listing stays cheap
    assert verify_checkpoint(target).status == "corrupt"
    with pytest.raises(CorruptCheckpointError, match="sha256"):
        load_checkpoint(target)


def test_recover_removes_dead_leftovers_and_restores_a_moved_aside_checkpoint(tmp_path):
    commit_directory(tmp_path / "last", {"a.json": {"v": 1}}, FIELDS)
    dead_pid = 2**22 + 12345  # above pid_max on Linux: never alive
    os.rename(tmp_path / "last", tmp_path / f".old-last-{dead_pid}-abcd1234")  # crash between the two renames
    (tmp_path / f".tmp-other-{dead_pid}-ffff0000").mkdir()
    (tmp_path / f".tmp-other-{dead_pid}-ffff0000" / "half.bin").write_bytes(b"x")
    actions = recover(tmp_path)
    assert len(actions) == 2
    assert load_checkpoint(tmp_path / "last")["a.json"] == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_recover_leaves_a_live_process_saves_alone(tmp_path):
    live = tmp_path / f".tmp-ckpt-{os.getppid()}-00000000"
    live.mkdir()
    recover(tmp_path)
    assert live.exists()


@pytest.mark.parametrize("via", ["recover", "load"])
def test_a_single_file_commit_cut_between_renames_is_finished(tmp_path, via):
    commit_file(tmp_path / "best.npz", {"w": np.zeros(4)}, FIELDS)
    # simulate: new data renamed into place, new manifest still in its temp file, process died
    new_fields = {**FIELDS, "step": 9}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    commit_file(scratch / "best.npz", {"w": np.ones(4)}, new_fields)
    os.replace(scratch / "best.npz", tmp_path / "best.npz")
    dead_pid = 2**22 + 999
    os.replace(scratch / "best.npz.manifest.json", tmp_path / f".tmp-best.npz.manifest.json-{dead_pid}-12345678")
    assert describe_checkpoint(tmp_path / "best.npz").step == 7  # the old manifest is still in place
    if via == "recover":
        recover(tmp_path)
    else:
        assert np.array_equal(load_checkpoint(tmp_path / "best.npz")["best.npz"]["w"], np.ones(4))
    info = verify_checkpoint(tmp_path / "best.npz")
    assert info.status == "ok" and info.step == 9


def test_async_save_returns_before_writing_and_snapshots_state(tmp_path, monkeypatch):
    gate = threading.Event()
    import trainer_core.checkpoint.manager as engine

    real = engine.commit_directory

    def slow_commit(*args, **kwargs):
        gate.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "commit_directory", slow_commit)
    weights = np.zeros(5)
    with CheckpointManager(tmp_path, package="p", layout="p.l", async_save=True) as manager:
        future = manager.save({"w.npz": {"w": weights}}, step=1)
        assert not future.done()  # training goes on while the writer waits
        weights += 100  # training mutates state after save() returned
        gate.set()
        info = future.result(5)
    assert info.status == "ok"
    assert np.array_equal(load_checkpoint(info.path)["w.npz"]["w"], np.zeros(5))


def test_async_save_errors_surface_on_the_next_call(tmp_path, monkeypatch):
    import trainer_core.checkpoint.manager as engine

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    manager = CheckpointManager(tmp_path, package="p", layout="p.l", async_save=True)
    monkeypatch.setattr(engine, "commit_directory", broken)
    manager.save({"a.json": {}}, step=1)
    with pytest.raises(OSError, match="No space"):
        manager.save({"a.json": {}}, step=2)
    monkeypatch.undo()
    manager.close()


def test_at_most_one_async_save_in_flight(tmp_path, monkeypatch):
    import trainer_core.checkpoint.manager as engine

    real = engine.commit_directory
    active, peak = [0], [0]
    lock = threading.Lock()

    def counting(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(engine, "commit_directory", counting)
    with CheckpointManager(tmp_path, package="p", layout="p.l", async_save=True) as manager:
        for step in range(1, 6):
            manager.save({"a.json": {"s": step}}, step=step)
    assert peak[0] == 1
    assert [c.step for c in manager.checkpoints()] == [1, 2, 3, 4, 5]


def test_unknown_suffix_and_pickle_names_are_refused_at_save(tmp_path):
    with pytest.raises(CheckpointError, match="pickle"):
        commit_directory(tmp_path / "c", {"w.pkl": {"a": 1}}, FIELDS)
    with pytest.raises(CheckpointError, match="known suffix"):
        commit_directory(tmp_path / "d", {"w.weird": object()}, FIELDS)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_latest_is_by_recorded_step_not_name(tmp_path):
    manager = CheckpointManager(tmp_path, package="p", layout="p.l")
    manager.save({"a.json": {}}, step=100, name="zzz_first")
    manager.save({"a.json": {}}, step=200, name="aaa_second")
    assert os.path.basename(manager.latest().path) == "aaa_second"


def test_temp_names_parse_back(tmp_path):
    name = temp_sibling(tmp_path / "checkpoint-with-dashes-1").name
    from trainer_core.checkpoint.recovery import _split_temp

    assert _split_temp(name, ".tmp-") == ("checkpoint-with-dashes-1", os.getpid())
    assert name.endswith("@" + __import__("trainer_core.checkpoint.atomic", fromlist=["host_tag"]).host_tag())


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_recovery_judges_another_hosts_save_by_age_never_by_pid(tmp_path, monkeypatch):
    """On a shared file system a pid means something only on its own host: another node's save
    in progress is left alone (whatever the pid), until it is older than the grace age."""
    from trainer_core.checkpoint.recovery import recover

    pid = _dead_pid()
    foreign = tmp_path / f".tmp-epoch_0003-{pid}-abcd1234@other-node-7.cluster"
    mine = tmp_path / f".tmp-epoch_0004-{pid}-abcd1234@{__import__('trainer_core.checkpoint.atomic', fromlist=['host_tag']).host_tag()}"
    for d in (foreign, mine):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"x")
    recover(tmp_path)
    assert foreign.exists() and not mine.exists()  # the dead local writer's half is gone
    old = __import__("time").time() - 7 * 3600
    os.utime(foreign, (old, old))
    actions = recover(tmp_path)
    assert not foreign.exists() and any("epoch_0003" in a for a in actions)
    again = tmp_path / f".tmp-epoch_0005-{pid}-abcd1234@other-node-7"
    again.mkdir()
    monkeypatch.setenv("TRAINER_CORE_FOREIGN_TEMP_AGE", "0")
    recover(tmp_path)
    assert not again.exists()


def test_manifest_is_the_last_file_written(tmp_path, monkeypatch):
    import trainer_core.checkpoint.commit as engine

    order = []
    real = engine.write_durable
    monkeypatch.setattr(engine, "write_durable", lambda path, data: (order.append(os.path.basename(path)), real(path, data))[1])
    commit_directory(tmp_path / "c", {"b.json": {}, "a.json": {}}, FIELDS)
    assert order[-1] == mf.MANIFEST_NAME


def test_reused_staging_buffers_never_mix_two_saves(tmp_path):
    torch = pytest.importorskip("torch")
    weights = torch.zeros(1000)
    with CheckpointManager(tmp_path, package="p", layout="p.l", async_save=True) as manager:
        infos = []
        for step in range(1, 5):
            weights.fill_(step)
            infos.append(manager.save({"m.safetensors": {"w": weights}, "s.pt": {"w": weights * 2}}, step=step))
            weights.fill_(-1)  # training changes the live tensor right after save() returns
        infos = [f.result() for f in infos]
    for step, info in enumerate(infos, start=1):
        loaded = load_checkpoint(info.path)
        assert torch.all(loaded["m.safetensors"]["w"] == step) and torch.all(loaded["s.pt"]["w"] == 2 * step)


def test_process_exit_waits_for_the_save_in_flight(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from trainer_core.checkpoint import CheckpointManager\n"
        "m = CheckpointManager(sys.argv[1], package='p', layout='p.l', async_save=True)\n"
        "m.save({'w.npz': {'w': np.ones(2_000_000)}}, step=1)\n"  # no wait(), no close(): exit right away
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    (info,) = CheckpointManager(tmp_path, package="p", layout="p.l").checkpoints()
    assert verify_checkpoint(info.path).status == "ok"
