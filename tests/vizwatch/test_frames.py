"""Frames: milestone epochs, red X per misclassification, comparable embeddings, run folders."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from vizwatch import runs
from vizwatch.embedding import Embedder, disparity, resolve_method, trustworthiness
from vizwatch.render import FrameInfo, fixed_limits, render_frame
from vizwatch.schedule import snapshot_epochs
from vizwatch.trainer.train import train


def test_schedule_is_epoch_1_milestones_every_n_and_last():
    assert snapshot_epochs(150, 10) == [1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 100, 110, 120, 130, 140, 150]
    assert snapshot_epochs(12, 7) == [1, 5, 7, 10, 12]


def test_frames_at_exactly_the_scheduled_epochs(tmp_path, small_config, pm):
    summary = train(small_config(epochs=27, visualize_training=True, viz_every=8), tmp_path / "run", pm=pm, progress=False)
    run = tmp_path / "viz" / "run_001"
    epochs = sorted(int(p.name[6:9]) for p in run.glob("epoch_*.png"))
    assert epochs == snapshot_epochs(27, 8) == [1, 5, 8, 10, 16, 24, 25, 27]
    meta = json.loads((run / "run_metadata.json").read_text())
    assert meta["status"] == "completed" and [f["epoch"] for f in meta["frames"]] == epochs
    final = meta["frames"][-1]
    assert final["val_acc"] == pytest.approx(summary["metrics"]["val_acc"])
    assert {"val_balanced_acc", "val_macro_f1", "train_acc", "val_loss"} <= set(final)
    assert (run / "training_progress.txt").read_text().count("\n") == 2 + len(epochs)
    assert (run / "create_animation.sh").stat().st_mode & 0o100


def test_red_x_count_is_the_off_diagonal_of_the_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    predictions = np.where(rng.random(300) < 0.8, labels, rng.integers(0, 4, 300))
    cm = confusion_matrix(labels, predictions)
    xy = rng.normal(size=(300, 2))
    drawn = render_frame(
        tmp_path / "f.png",
        xy,
        labels,
        xy,
        labels,
        predictions,
        ["AGN", "HM/LM", "YSO", "CV"],
        fixed_limits(xy),
        FrameInfo(1, 10, {"val_acc": 0.8}, "pca"),
    )
    assert drawn["red_x"] == cm.sum() - np.trace(cm) > 0
    assert (tmp_path / "f.png").stat().st_size > 10_000


def _digit_features(seed=0):
    from sklearn.datasets import load_digits

    data = load_digits()
    idx = np.random.default_rng(seed).choice(len(data.target), 800, replace=False)
    return data.data[idx] / 16.0


def test_tsne_frames_are_stable_when_the_model_did_not_change():
    features = _digit_features()
    embedder = Embedder("tsne", seed=0)
    first = embedder.embed(features)
    second = embedder.embed(features)
    assert disparity(first, second) <= 0.05
    assert trustworthiness(features, first) >= 0.85 and trustworthiness(features, second) >= 0.85


def test_frames_while_training_stay_comparable_and_trustworthy(tmp_path, pm):
    from vizwatch.trainer.config import VizwatchConfig

    config = VizwatchConfig(
        dataset="digits",
        classes=10,
        epochs=12,
        focal_gamma=0.0,
        visualize_training=True,
        viz_every=2,
        viz_root=str(tmp_path / "viz"),
        viz_worker="thread",
    )
    train(config, tmp_path / "run", pm=pm, progress=False)
    frames = json.loads((tmp_path / "viz" / "run_001" / "run_metadata.json").read_text())["frames"]
    assert [f["epoch"] for f in frames] == [1, 2, 4, 5, 6, 8, 10, 12]
    assert all(f["trustworthiness_10"] >= 0.85 for f in frames), [f["trustworthiness_10"] for f in frames]
    assert all(f["disparity_to_previous"] <= 0.15 for f in frames[1:]), [f["disparity_to_previous"] for f in frames]


def test_a_missing_optional_library_falls_back_with_one_warning(monkeypatch):
    import vizwatch.embedding as embedding

    monkeypatch.setattr(embedding, "available", lambda method: method != "umap")
    with pytest.warns(UserWarning, match="umap-learn is not installed, using tsne") as caught:
        assert resolve_method("umap") == "tsne"
    assert len(caught) == 1
    monkeypatch.setattr(embedding, "available", lambda method: method == "pca")
    with pytest.warns(UserWarning, match="openTSNE is not installed, using pca"):
        assert Embedder("tsne").method == "pca"


def _create(root):
    return str(runs.create_run(root, {"method": "pca"}))


def test_run_folders_are_never_reused_under_concurrent_start(tmp_path):
    (tmp_path / "run_001").mkdir()
    (tmp_path / "run_001" / "epoch_001_acc0.5000.png").write_bytes(b"earlier run")
    with ProcessPoolExecutor(4) as pool:
        created = list(pool.map(_create, [tmp_path] * 8))
    assert len(set(created)) == 8 and str(tmp_path / "run_001") not in created
    assert (tmp_path / "run_001" / "epoch_001_acc0.5000.png").read_bytes() == b"earlier run"


@pytest.mark.slow
def test_umap_frames_are_stable_and_trustworthy():
    features = _digit_features()
    embedder = Embedder("umap", seed=0)
    first = embedder.embed(features)
    second = embedder.embed(features)
    third = embedder.embed(features + np.random.default_rng(1).normal(0, 0.05, features.shape))
    assert disparity(first, second) <= 0.05
    assert disparity(second, third) <= 0.15
    assert min(trustworthiness(features, e) for e in (first, second)) >= 0.85
