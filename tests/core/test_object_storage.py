"""Checkpoint roots on object storage, against a real S3 server (moto's, on 127.0.0.1): the commit
without rename (immutable data prefixes, manifest last with a conditional write), listing from
manifests, verify, prune and its garbage collection, loading, a trainer that trains to and
resumes from s3://, a SIGKILL while uploading and two writers racing on one name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from trainer_core.checkpoint import CheckpointManager, list_committed, load_checkpoint, remote, verify_checkpoint
from trainer_core.checkpoint.retention import RetentionPolicy
from trainer_core.errors import CorruptCheckpointError, UsageError


def _fs():
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True)


def _objects(url):
    fs = _fs()
    return sorted(fs.find(url.split("://", 1)[1]))


def _manager(root, **kw):
    return CheckpointManager(root, package="trainer-core", layout="core.example", **kw)


def _state(step, size=1000):
    return {"weights.npz": {"w": np.arange(size, dtype=np.float32) * step}, "config.json": {"step": step}}


def test_save_list_show_verify_prune_load(s3_root, run_core, tmp_path):
    root = f"{s3_root}/team/run1/checkpoints"
    manager = _manager(root)
    for step in (1, 2, 3):
        manager.save(_state(step), step=step, metrics={"val_loss": 1.0 / step})
    committed = manager.checkpoints()
    assert [c.step for c in committed] == [1, 2, 3] and all(c.path.startswith("s3://") for c in committed)

    loaded = load_checkpoint(committed[-1].path, framework="numpy")
    assert np.array_equal(loaded["weights.npz"]["w"], np.arange(1000, dtype=np.float32) * 3)
    assert loaded["config.json"] == {"step": 3}

    # the same columns as a local listing of the same checkpoints
    local = _manager(tmp_path / "run1" / "checkpoints")
    for step in (1, 2, 3):
        local.save(_state(step), step=step, metrics={"val_loss": 1.0 / step})
    remote_listing = run_core("list-checkpoints", f"{s3_root}/team", "--wide")
    local_listing = run_core("list-checkpoints", tmp_path, "--wide")
    assert remote_listing.exit_code == 0, remote_listing.output
    assert remote_listing.output.splitlines()[0] == local_listing.output.splitlines()[0]
    assert f"{s3_root}/team/run1/checkpoints" in remote_listing.output
    assert remote_listing.output.count(" ok") == 3

    shown = run_core("show", committed[0].path, "--json")
    assert shown.exit_code == 0 and json.loads(shown.output)["step"] == 1

    verified = run_core("verify", f"{s3_root}/team", "--json")
    assert verified.exit_code == 0 and [r["status"] for r in json.loads(verified.output)] == ["ok"] * 3

    pruned = run_core("prune", root, "--keep-last", "1", "--json")
    assert pruned.exit_code == 0, pruned.output
    assert sorted(json.loads(pruned.output)["deleted"]) == sorted(c.path for c in committed[:2])
    assert [c.step for c in list_committed(root)] == [3]
    assert not [o for o in _objects(root) if "checkpoint_step_00000001" in o]  # data went with the manifest


def test_damaged_objects_are_reported_and_never_loaded(s3_root, run_core):
    root = f"{s3_root}/damaged"
    info = _manager(root).save(_state(1), step=1)
    fs = _fs()
    data = [o for o in _objects(info.path) if o.endswith("weights.npz")][0]
    original = fs.cat_file(data)
    fs.pipe_file(data, bytes(b ^ 0xFF for b in original))  # same size, other bytes
    assert verify_checkpoint(info.path).status == "corrupt"
    with pytest.raises(CorruptCheckpointError, match="weights.npz"):
        load_checkpoint(info.path)
    assert run_core("verify", info.path).exit_code == 1
    fs.pipe_file(data, original[:100])  # truncated: listing alone tells
    listed = run_core("list-checkpoints", root, "--json")
    assert json.loads(listed.output)[0]["status"] == "corrupt"


def test_replacing_a_name_removes_the_replaced_data_and_retention_keeps_the_protected(s3_root):
    root = f"{s3_root}/best"
    manager = CheckpointManager(root, package="p", layout="l", single_file=True, name_format="best_model.json")
    manager.save({"best_model.json": {"v": 1}}, step=1)
    manager.save({"best_model.json": {"v": 2}}, step=2)
    assert load_checkpoint(f"{root}/best_model.json").files == {"best_model.json": {"v": 2}}
    prefixes = {o.split("/.data/")[1].split("/")[0] for o in _objects(root) if "/.data/" in o}
    assert len(prefixes) == 1  # the first save's data is gone with its last reference

    series = _manager(f"{s3_root}/series", retention=RetentionPolicy(keep_last=1))
    first = series.save(_state(1), step=1)
    series.protect(first.path)  # e.g. the checkpoint a run resumed from
    for step in (2, 3):
        series.save(_state(step), step=step)
    assert [c.step for c in series.checkpoints()] == [1, 3]


def test_async_saves_upload_in_the_background(s3_root):
    with _manager(f"{s3_root}/async", async_save=True) as manager:
        futures = [manager.save(_state(step, 200_000), step=step) for step in (1, 2)]
        manager.wait()
    assert [f.result().step for f in futures] == [1, 2]
    assert all(verify_checkpoint(f.result().path).status == "ok" for f in futures)


def test_garbage_collection_spares_named_and_recent_data(s3_root, run_core, monkeypatch):
    root = f"{s3_root}/gc"
    info = _manager(root).save(_state(1), step=1)
    fs = _fs()
    bucket_path = info.path.split("://", 1)[1]
    fs.pipe_file(f"{bucket_path}/.data/20000101T000000-1-dead/weights.npz", b"half")  # a dead save's leftovers
    orphan = f"{root.split('://', 1)[1]}/never_committed/.data/20000101T000000-2-dead/config.json"
    fs.pipe_file(orphan, b"{}")
    listed = json.loads(run_core("list-checkpoints", root, "--json").output)
    assert sorted(c["status"] for c in listed) == ["incomplete", "ok"]  # data without a manifest

    assert run_core("prune", root, "--keep-last", "5", "--json").exit_code == 0
    assert fs.exists(orphan)  # younger than the grace period: maybe a save in progress
    monkeypatch.setenv("TRAINER_CORE_REMOTE_GRACE", "0")
    result = json.loads(run_core("prune", root, "--keep-last", "5", "--json").output)
    assert len(result["unreferenced_data"]) == 2
    assert not fs.exists(orphan)
    assert verify_checkpoint(info.path).status == "ok"  # the prefix its manifest names is untouched
    assert [c["status"] for c in json.loads(run_core("list-checkpoints", root, "--json").output)] == ["ok"]


def test_two_writers_racing_on_one_name_only_one_commits(s3_root, monkeypatch):
    """Both writers read the name's state before either commits (a barrier in the upload): one
    commit wins, the other gets one clear error and publishes nothing; then the same race on
    replacing an existing checkpoint (If-Match on the ETag both read)."""
    upload = remote._upload
    for existing in (False, True):
        root = f"{s3_root}/race-{existing}"
        if existing:
            remote.commit(root, "best", {"a.json": {"v": 0}}, _fields(0))
        barrier = threading.Barrier(2, timeout=30)

        def slow_upload(fs, path, data, digest=None, barrier=barrier):
            barrier.wait()
            return upload(fs, path, data, digest)

        monkeypatch.setattr(remote, "_upload", slow_upload)
        outcomes: dict[int, object] = {}

        def write(value, root=root, outcomes=outcomes):
            try:
                outcomes[value] = remote.commit(root, "best", {"a.json": {"v": value}}, _fields(value))
            except remote.CommitConflictError as exc:
                outcomes[value] = exc

        threads = [threading.Thread(target=write, args=(v,)) for v in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        monkeypatch.setattr(remote, "_upload", upload)
        errors = [o for o in outcomes.values() if isinstance(o, remote.CommitConflictError)]
        assert len(errors) == 1 and len(outcomes) == 2, outcomes
        assert "another writer" in str(errors[0]) and "\n" not in str(errors[0])
        winner = next(v for v, o in outcomes.items() if not isinstance(o, Exception))
        assert load_checkpoint(f"{root}/best").files["a.json"] == {"v": winner}
        assert len({o.split("/.data/")[1].split("/")[0] for o in _objects(root) if "/.data/" in o}) == 1  # the loser's data removed


def _fields(step):
    return dict(package="p", layout="l", layout_version=1, kind="checkpoint", name="best", step=step, epoch=None,
                metrics={}, config_hash=None, extra={})  # fmt: skip


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time, numpy as np
    from trainer_core.checkpoint import CheckpointManager, remote
    upload = remote._upload

    def slow_network(fs, path, data, digest=None):  # each object takes a while: the kill lands mid-save
        result = upload(fs, path, data, digest)
        print("uploaded", path.rsplit("/", 1)[-1], flush=True)
        time.sleep(0.3)
        return result

    remote._upload = slow_network
    manager = CheckpointManager(sys.argv[1], package="trainer-core", layout="core.example")
    for step in range(1, 4):
        state = {f"part{i}.npz": {"w": np.full(500_000, step, dtype=np.float32)} for i in range(4)}
        manager.save(state, step=step)
        print("committed", step, flush=True)
    """
)


def test_sigkill_while_uploading_leaves_the_last_commit_loadable(s3_root, tmp_path, run_core, monkeypatch):
    root = f"{s3_root}/killed"
    script = tmp_path / "saver.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), root], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        lines = []
        while (line := proc.stdout.readline()) and not (lines and lines[-1] == "committed 1" and line.startswith("uploaded")):
            lines.append(line.strip())
        os.kill(proc.pid, signal.SIGKILL)  # step 2: one or two objects up, no manifest
    finally:
        proc.kill()
        proc.wait()
    listed = json.loads(run_core("list-checkpoints", root, "--json").output)
    assert [(c["step"], c["status"]) for c in listed if c["status"] == "ok"] == [(1, "ok")]
    assert verify_checkpoint(listed[0]["path"] if listed[0]["status"] == "ok" else listed[1]["path"]).status == "ok"
    newest = next(c for c in listed if c["status"] == "ok")
    loaded = load_checkpoint(newest["path"], framework="numpy")
    assert float(loaded["part3.npz"]["w"][0]) == 1.0
    half = [c for c in listed if c["status"] != "ok"]
    assert len(half) == 1 and half[0]["status"] == "incomplete" and half[0]["path"].endswith("checkpoint_step_00000002")
    monkeypatch.setenv("TRAINER_CORE_REMOTE_GRACE", "0")
    pruned = json.loads(run_core("prune", root, "--keep-last", "9", "--json").output)
    assert len(pruned["unreferenced_data"]) == 1
    assert [c["status"] for c in json.loads(run_core("list-checkpoints", root, "--json").output)] == ["ok"]


def test_example_trainer_trains_to_and_resumes_from_s3_bit_identically(s3_root, tmp_path, core_pm):
    torch = pytest.importorskip("torch")
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    config = ExampleConfig(epochs=2, samples=400, batch_size=32, checkpoint_every_steps=5, keep_last=2, hidden_size=16, seed=5)
    full = train(config, tmp_path / "full", pm=core_pm, progress=False)
    url = f"{s3_root}/runs/example"
    part = train(config, url, pm=core_pm, progress=False, max_steps=12)
    assert part["status"] == "interrupted" and part["run_dir"] == url
    resumed = train(config, resume=url, pm=core_pm, progress=False)
    assert resumed["status"] == "completed" and resumed["step"] == full["step"]
    a = load_checkpoint(full["latest_checkpoint"])
    b = load_checkpoint(resumed["latest_checkpoint"])
    assert b.info.path.startswith(url + "/checkpoints/")
    for name, tensor in a["model.safetensors"].items():
        assert torch.equal(tensor, b["model.safetensors"][name]), name
    records = [json.loads(line) for line in _fs().cat_file(f"{url.split('://', 1)[1]}/metrics.jsonl").decode().splitlines()]
    steps = [r["step"] for r in records if r["split"] == "train"]
    assert steps == list(range(1, full["step"] + 1))  # the run's files follow it to the bucket, no duplicates


def test_a_missing_filesystem_names_the_extra_and_a_missing_bucket_is_one_line(s3_root, run_core):
    import importlib.util

    if importlib.util.find_spec("gcsfs") is None:
        result = run_core("list-checkpoints", "gs://bucket/prefix")
        assert result.exit_code == 2 and "trainer-core[gcs]" in result.output
    result = run_core("list-checkpoints", "s3://no-such-bucket-here/prefix")
    assert result.exit_code == 2 and "nothing at s3://no-such-bucket-here/prefix" in result.output
    with pytest.raises(UsageError):
        load_checkpoint(f"{s3_root}/nothing/here")


def test_a_local_checkpoint_folder_copied_to_the_bucket_reads_there(s3_root, tmp_path, run_core):
    local = _manager(tmp_path / "ckpts").save(_state(7), step=7)
    fs = _fs()
    fs.put(str(local.path), f"{s3_root.split('://', 1)[1]}/copied/", recursive=True)  # as `aws s3 cp --recursive` would
    url = f"{s3_root}/copied/{os.path.basename(local.path)}"
    assert verify_checkpoint(url).status == "ok"
    assert load_checkpoint(url, framework="numpy")["config.json"] == {"step": 7}
    assert json.loads(run_core("list-checkpoints", f"{s3_root}/copied", "--json").output)[0]["status"] == "ok"
