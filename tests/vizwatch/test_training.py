"""`vizwatch train`: focal loss, oversampling without leaks, bit-identical with and without vizwatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from trainer_core.checkpoint import load_checkpoint
from vizwatch.trainer.data import XRAY_CLASSES, make_xray_sources
from vizwatch.trainer.model import focal_loss
from vizwatch.trainer.sampling import oversample, split
from vizwatch.trainer.train import train


def test_focal_loss_with_gamma_0_is_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(64, 4), torch.randint(0, 4, (64,))
    assert torch.allclose(focal_loss(logits, targets, 0.0), F.cross_entropy(logits, targets))
    assert focal_loss(logits, targets, 3.0) < F.cross_entropy(logits, targets)  # easy examples are down-weighted
    confident = torch.tensor([[10.0, 0, 0, 0]])
    assert focal_loss(confident, torch.tensor([0]), 3.0) < 1e-6 * F.cross_entropy(confident, torch.tensor([0]))


def test_oversampled_copies_never_reach_validation():
    data = make_xray_sources(3000, 4, seed=1)
    train_idx, val_idx = split(data.y, 0.2, seed=1)
    fit_idx = oversample(train_idx, data.y, 1.0, seed=1)
    assert not set(train_idx) & set(val_idx)
    assert set(fit_idx) <= set(train_idx) and not set(fit_idx) & set(val_idx)
    counts = np.bincount(data.y[fit_idx])
    assert counts.min() == counts.max()  # every minority class grown to the majority's size
    assert len(fit_idx) > len(train_idx)
    val_rows = {row.tobytes() for row in data.x[val_idx]}
    assert not any(row.tobytes() in val_rows for row in data.x[fit_idx])


def test_data_is_imbalanced_and_named_as_in_the_seed():
    data = make_xray_sources(5000, 4, seed=0)
    assert data.class_names == list(XRAY_CLASSES) == ["AGN", "HM/LM", "YSO", "CV"]
    counts = np.bincount(data.y)
    assert counts[0] > 5 * counts[3]


def _model_hash(summary):
    latest = sorted((p for p in (load_checkpoint(c) for c in [summary["best_checkpoint"]])), key=lambda c: c.info.step)[-1]
    return latest.info.files["model.safetensors"]["sha256"], latest.info.metrics


def test_training_is_bit_identical_with_and_without_vizwatch(tmp_path, small_config, pm):
    off = train(small_config(keep_last=10), tmp_path / "off", pm=pm, progress=False)
    on = train(
        small_config(keep_last=10, visualize_training=True, viz_method="tsne", viz_worker="process"), tmp_path / "on", pm=pm, progress=False
    )
    a = load_checkpoint(tmp_path / "off" / "checkpoints" / "checkpoint_epoch_0004")
    b = load_checkpoint(tmp_path / "on" / "checkpoints" / "checkpoint_epoch_0004")
    assert a.info.files["model.safetensors"]["sha256"] == b.info.files["model.safetensors"]["sha256"]
    assert a.info.metrics == b.info.metrics and off["metrics"] == on["metrics"]
    frames = sorted(p.name for p in (tmp_path / "viz" / "run_001").glob("epoch_*.png"))
    assert [f[:9] for f in frames] == ["epoch_001", "epoch_004"]


@pytest.mark.slow
def test_digits_reach_95_percent(tmp_path, pm):
    from vizwatch.trainer.config import VizwatchConfig

    summary = train(VizwatchConfig(dataset="digits", classes=10, epochs=100, focal_gamma=0.0), tmp_path, pm=pm, progress=False)
    assert summary["metrics"]["val_acc"] >= 0.95
