"""vizwatch is found through the `trainer_core` entry points and registers its layouts."""

from __future__ import annotations

import json

import numpy as np

from trainer_core.testing import assert_light_import, assert_plugin_registered
from vizwatch.schedule import snapshot_epochs
from vizwatch.trainer.train import train


def test_entry_point_registers_the_layouts():
    assert_plugin_registered("vizwatch", ["vizwatch.classifier", "vizwatch.run"])


def test_plugin_import_is_light():
    assert_light_import("vizwatch.plugin")


def _frames(tmp_path):
    run = tmp_path / "viz" / "run_001"
    return sorted(int(p.name[6:9]) for p in run.glob("epoch_*.png")), json.loads((run / "run_metadata.json").read_text())


def test_hook_visualize_epoch_end(tmp_path, small_config, pm):
    """vizwatch draws the scheduled epochs from the epoch-end hook (the default, ``viz_on: epoch``)."""
    train(small_config(epochs=6, visualize_training=True, viz_every=3), tmp_path / "run", pm=pm, progress=False)
    epochs, meta = _frames(tmp_path)
    assert epochs == snapshot_epochs(6, 3) == [1, 3, 5, 6] and meta["status"] == "completed"


def test_hook_visualize_checkpoint(tmp_path, small_config, pm):
    """With ``viz_on: checkpoint`` the frames come from the checkpoint hook: an epoch-end event alone
    draws nothing, a committed checkpoint's event draws its frame."""
    from trainer_core import CheckpointInfo, Run, SplitData, VisualizationEvent

    rng = np.random.default_rng(0)
    split = SplitData(rng.normal(size=(60, 4)).astype(np.float32), np.arange(60) % 3, np.arange(60) % 3)
    options = {"enabled": True, "method": "pca", "every": 1, "root": str(tmp_path / "viz"), "worker": "thread", "on": "checkpoint"}
    run_dir = tmp_path / "manual"
    run_dir.mkdir()
    event = VisualizationEvent(run_dir=run_dir, epoch=1, step=10, metrics={"val_acc": 0.5}, splits={"train": split, "val": split},
                               class_names=["a", "b", "c"], total_epochs=2, package="test", options=options)  # fmt: skip
    pm.hook.visualize_epoch_end(event=event)
    pm.hook.visualize_checkpoint(event=event, checkpoint=CheckpointInfo(path=str(run_dir / "ck"), step=10, epoch=1))
    pm.hook.on_train_end(run=Run(run_dir=run_dir, package="test"), status="completed")
    epochs, meta = _frames(tmp_path)
    assert epochs == [1] and len(meta["frames"]) == 1

    # and through a trainer: vizwatch train with viz_on=checkpoint draws each scheduled epoch once
    train(small_config(epochs=3, visualize_training=True, viz_every=1, viz_on="checkpoint", viz_root=str(tmp_path / "viz2")),
          tmp_path / "run", pm=pm, progress=False)  # fmt: skip
    assert sorted(int(p.name[6:9]) for p in (tmp_path / "viz2" / "run_001").glob("epoch_*.png")) == [1, 2, 3]
