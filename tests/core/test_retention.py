"""Retention keeps the newest, the best and the resume source; orders by recorded step."""

from __future__ import annotations

import json

import pytest

from trainer_core.checkpoint import CheckpointManager, list_committed
from trainer_core.checkpoint.retention import RetentionPolicy, parse_metric
from trainer_core.errors import UsageError


def _steps(directory):
    return [c.step for c in list_committed(directory)]


def test_keep_last_and_best(tmp_path):
    policy = RetentionPolicy(keep_last=2, keep_best=1, metric="val_loss", mode="min")
    manager = CheckpointManager(tmp_path, package="p", layout="p.l", retention=policy)
    for step, loss in [(1, 0.9), (2, 0.1), (3, 0.5), (4, 0.7), (5, 0.6)]:
        manager.save({"a.json": {}}, step=step, metrics={"val_loss": loss})
    assert _steps(tmp_path) == [2, 4, 5]


def test_newest_and_best_survive_even_keep_last_zero(tmp_path):
    manager = CheckpointManager(
        tmp_path, package="p", layout="p.l", retention=RetentionPolicy(keep_last=0, keep_best=0, metric="acc", mode="max")
    )
    for step, acc in [(1, 0.2), (2, 0.9), (3, 0.5)]:
        manager.save({"a.json": {}}, step=step, metrics={"acc": acc})
    assert _steps(tmp_path) == [2, 3]


def test_resume_source_is_protected(tmp_path):
    manager = CheckpointManager(tmp_path, package="p", layout="p.l", retention=RetentionPolicy(keep_last=1))
    first = manager.save({"a.json": {}}, step=1)
    manager.protect(first.path)
    for step in (2, 3, 4):
        manager.save({"a.json": {}}, step=step)
    assert _steps(tmp_path) == [1, 4]


def test_order_is_by_recorded_step_not_name(tmp_path):
    manager = CheckpointManager(tmp_path, package="p", layout="p.l", retention=RetentionPolicy(keep_last=1))
    manager.save({"a.json": {}}, step=10, name="ckpt_9")  # names sort the other way round
    manager.save({"a.json": {}}, step=20, name="ckpt_10")
    assert [c.step for c in list_committed(tmp_path)] == [20]


def test_composite_metric(tmp_path):
    assert parse_metric("recon + 0.5*topo - 2*quality") == {"recon": 1.0, "topo": 0.5, "quality": -2.0}
    policy = RetentionPolicy(keep_last=1, keep_best=1, metric="recon + 0.5*topo")
    manager = CheckpointManager(tmp_path, package="p", layout="p.l", retention=policy)
    manager.save({"a.json": {}}, step=1, metrics={"recon": 1.0, "topo": 0.0})  # 1.0
    manager.save({"a.json": {}}, step=2, metrics={"recon": 0.2, "topo": 0.4})  # 0.4 (best)
    manager.save({"a.json": {}}, step=3, metrics={"recon": 0.1, "topo": 2.0})  # 1.1
    manager.save({"a.json": {}}, step=4, metrics={"recon": 0.9, "topo": 0.9})  # 1.35 (newest)
    assert _steps(tmp_path) == [2, 4]
    with pytest.raises(UsageError):
        parse_metric("recon ** 2")


def test_prune_touches_nothing_it_did_not_write(tmp_path, run_core):
    manager = CheckpointManager(tmp_path, package="p", layout="p.l")
    for step in range(1, 6):
        manager.save({"a.json": {}}, step=step, metrics={"loss": 1.0 / step})
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "hand_made").mkdir()
    dry = run_core("prune", tmp_path, "--keep-last", "1", "--dry-run", "--json")
    assert len(json.loads(dry.stdout)["would_delete"]) == 4 and _steps(tmp_path) == [1, 2, 3, 4, 5]
    result = run_core(
        "prune", tmp_path, "--keep-last", "2", "--keep-best", "1", "--metric", "loss", "--protect", tmp_path / "checkpoint_step_00000001"
    )
    assert result.exit_code == 0, result.output
    assert _steps(tmp_path) == [1, 4, 5]
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "hand_made").is_dir()


def test_prune_needs_something_to_keep(tmp_path, run_core):
    result = run_core("prune", tmp_path)
    assert result.exit_code == 2 and "--keep-last" in result.output
