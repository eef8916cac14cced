"""The detector: torchvision's FCOS on a ResNet-18 (standard) or ResNet-50 (professional) FPN.

Why FCOS: Bongard-LOGO boxes range from squat to needle-thin (a 3-pixel-tall line); FCOS regresses
box sides from every location inside the object, so no anchor shapes have to cover those aspect
ratios, there is no proposal stage to tune, and the head is light enough for a CPU. Backbones
start from random weights (nothing is downloaded); the FPN width and head depth are settings so
that the quick CPU profile stays small.

Under mixed precision the losses are computed in float32 (:class:`Float32LossHead`): torchvision
decodes the predicted boxes in the head's dtype, and in float16 a predicted box over 256 px a side
overflows its area in the GIoU loss (inf, then NaN), and the classification loss came back float16.
The professional profile's first GPU run at 416 px (float16) ended its first epoch with a NaN loss,
most likely that way; with float32 losses and bfloat16 its next run trained cleanly.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.fcos import FCOSHead

from bongard_detector.programs import CLASSES

NUM_CLASSES = len(CLASSES) + 1  # COCO ids 1..10; index 0 unused (torchvision's convention)


class Float32LossHead(FCOSHead):
    """FCOS's head whose losses are computed in float32 whatever the autocast around the model."""

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs):
        device = next(iter(head_outputs.values())).device.type
        with torch.autocast(device, enabled=False):
            outputs = {k: v.float() for k, v in head_outputs.items()}
            return super().compute_loss(targets, outputs, [a.float() for a in anchors], matched_idxs)


def build_detector(
    professional: bool = False,
    image_size: int = 416,
    fpn_channels: int = 128,
    head_convs: int = 2,
    score_thresh: float = 0.05,
) -> nn.Module:
    from torchvision.models import resnet18, resnet50
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    body = (resnet50 if professional else resnet18)(weights=None)
    widths = [512, 1024, 2048] if professional else [128, 256, 512]
    backbone = BackboneWithFPN(
        body,
        return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=widths,
        out_channels=fpn_channels,
        extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels),
    )
    head = Float32LossHead(fpn_channels, num_anchors=1, num_classes=NUM_CLASSES, num_convs=head_convs)
    return FCOS(
        backbone,
        num_classes=NUM_CLASSES,
        min_size=image_size,
        max_size=image_size,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        head=head,
        score_thresh=score_thresh,
        detections_per_img=50,
        topk_candidates=200,
    )
