"""The detector's losses stay float32 (and finite) when mixed precision makes its head's outputs half precision."""

from __future__ import annotations

import torch

from bongard_detector.model import build_detector


def test_the_losses_are_float32_when_the_head_answers_in_float16():
    torch.manual_seed(0)
    model = build_detector(image_size=128, fpn_channels=32, head_convs=1).train()
    head = model.head.forward
    model.head.forward = lambda features: {k: v.half() for k, v in head(features).items()}  # what CUDA float16 autocast gives
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 120.0, 110.0]]), "labels": torch.tensor([3])} for _ in range(2)]
    losses = model(images, targets)
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    for name, value in losses.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), name


def test_auto_precision_is_bfloat16_on_a_cpu_that_computes_it_natively(monkeypatch):
    from bongard_detector import training

    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(training, "cpu_has_bf16", lambda native=native: native)
        autocast, scaler = training.autocast_and_scaler(cpu, "auto")
        assert scaler is None and autocast.fast_dtype == torch.bfloat16 and autocast._enabled is native
        assert training.resolved_precision(cpu, "auto") == ("bf16" if native else "fp32")
    assert not training.autocast_and_scaler(cpu, "fp32")[0]._enabled
    assert training.autocast_and_scaler(cpu, "bf16")[0]._enabled  # asked for: even where it is emulated


def test_the_shape_classifier_trains_under_bfloat16_autocast():
    from bongard_detector.shape_classifier import build_classifier, classifier_losses

    torch.manual_seed(0)
    model = build_classifier(professional=False)
    x, labels, maps = torch.rand(4, 3, 64, 64), torch.tensor([0, 3, 7, 9]), torch.rand(4, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        parts = classifier_losses(model, x, labels, maps)
        loss = sum(parts.values())
    loss.backward()
    assert all(torch.isfinite(v) for v in parts.values())
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters() if p.requires_grad)


def test_the_quick_profile_trains_its_classifier_less_where_it_would_run_in_float32(monkeypatch):
    from bongard_detector import training
    from bongard_detector.pipeline import PROFILES, QUICK_FP32_CLASSIFIER_STEPS, make_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    full = PROFILES["quick"].train.classifier_steps
    for native, steps in ((True, full), (False, QUICK_FP32_CLASSIFIER_STEPS)):
        monkeypatch.setattr(training, "cpu_has_bf16", lambda native=native: native)
        assert make_config("quick").train.classifier_steps == steps
        assert make_config("quick", classifier_steps=500).train.classifier_steps == 500  # asked for: kept
    assert make_config("quick", precision="bf16").train.classifier_steps == full  # bf16 asked for: the full profile
    assert make_config("standard").train.classifier_steps == PROFILES["standard"].train.classifier_steps
    assert QUICK_FP32_CLASSIFIER_STEPS < full
