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
