"""The shape classifier: a ResNet that names one shape from a crop of its box. It pretrains the
detector's backbone, then rescores the detector's boxes.

The detector's hard part is the class, not the box: it must count a shape's lines or tell a sector
from an arc. FCOS learns the class at every location inside a box, each seeing only part of the
shape, so it learns it slowly: after the quick profile's 1,500 steps from random weights it named
54% of the shapes it found, while it boxed them well. A classifier of square crops around each
training box, resized to ``crop`` pixels, sees the whole shape through global pooling and costs a
fraction of a detection step: on 2 CPU cores it reaches 90% held-out accuracy in about 7 minutes
(51,000 crops). Two uses (README, "Where it stands", for the figures):

* pretraining: the detector starts from the classifier's ResNet weights (:func:`train_classifier`);
* rescoring: each detection's score is multiplied by the classifier's probability of its class on
  the detection's crop (:func:`rescore`): P(shape here) x P(class | the whole shape), the two
  stages of an R-CNN with the second one looking at the pixels of the box.

The class of a figure is mostly a count (how many lines; a sector's arc between two radii), and a
figure never seen is a new arrangement of familiar parts. So the classifier also counts
(:class:`CountingResNet`): it learns, from the point lists each generated annotation records
(``lines``, ``arcs``, ``vertices``: ``generate.stroke_points``), where the middles of the shape's lines
and arcs and its vertices are, and its class logits see the totals; the logits of the totals alone
must name the shape too. On crops of the 84 held-out human-designed shapes counting raised the
accuracy from 0.58 to 0.65, naming from the counts alone to 0.69 (README, "Where it stands").
Where a crop is of a human-designed shape, its pooled features also predict the 26 attributes the
designers wrote down for it (convex, closed, thin, has a line crossing, ...: :mod:`bongard_detector.attributes`),
which say in transferable terms why a figure is in its class.

Crops come from the training images only (nothing from the real set); the classes are invariant to
rotation and mirroring, so batches are turned by multiples of 90 degrees and flipped (and the
counting maps with them). Training is
checkpointed through trainer-core every ``CHECKPOINT_EVERY`` steps with the RNGs, so an interrupted
run resumes to the same weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from bongard_detector.attributes import ATTRIBUTE_COUNT, shape_attributes

HELD_OUT = 500  # crops kept aside to report the classifier's accuracy
CHECKPOINT_EVERY = 200  # steps


COUNT_GRID = 8  # the counting maps' side: one cell per 8 pixels of a 64-pixel crop
COUNTED = ("lines", "arcs", "vertices")  # what the counting head counts (the annotations' point lists)


class ShapeCrops(NamedTuple):
    """What the classifier trains on, one row per annotated shape (:func:`shape_crops`)."""

    grey: torch.Tensor  # uint8 [N, 1, size, size]
    labels: torch.Tensor  # class indices 0..9
    maps: torch.Tensor | None  # [N, 3, COUNT_GRID, COUNT_GRID] counting maps, None where not recorded
    attributes: torch.Tensor  # [N, ATTRIBUTE_COUNT] the designers' attributes (0/1) ...
    known: torch.Tensor  # ... and which of them are known (none for a shape not in the table)


def shape_crops(dataset, size: int) -> ShapeCrops:
    """The crops of every annotated shape of ``dataset`` (a :class:`~bongard_detector.training.CocoImages`
    without augmentation): the square around the box, 10% larger than its longer side, resized to
    ``size``, with their classes. The counting maps hold, per cell of the crop, how many line
    middles, arc middles and vertices of the shape fall in it (None when the annotations do not
    record them, as in COCO files from elsewhere); the attributes are those of the human-designed
    shape the annotation's ``shape`` names (:func:`~bongard_detector.attributes.shape_attributes`)."""
    from torchvision.ops import roi_align

    crops, labels, maps, names = [], [], [], []
    counted = all(all(k in a for k in COUNTED) for a in dataset.coco["annotations"])
    for index in range(len(dataset)):
        image, target = dataset[index]
        if not len(target["boxes"]):
            continue
        squares = square_boxes(target["boxes"])
        # past the image's edge roi_align fills with 0 (a black band), here as in rescore(); white
        # paper there was tried and measured no better (README, "Where it stands")
        crops.append(roi_align(image[:1][None], [squares], output_size=size, aligned=True))
        labels.append(target["labels"] - 1)
        annotations = dataset.by_image[dataset.images[index]["id"]]
        names += [a.get("shape") for a in annotations]
        if counted:
            maps += [count_map(a, square) for a, square in zip(annotations, squares, strict=True)]
    grey = torch.cat(crops).clamp(0, 1).mul(255).round().to(torch.uint8)
    return ShapeCrops(grey, torch.cat(labels), torch.stack(maps) if counted else None, *shape_attributes(names))


def count_map(annotation: dict, square: torch.Tensor, grid: int = COUNT_GRID) -> torch.Tensor:
    """``[3, grid, grid]``: how many of the annotation's line middles, arc middles and vertices fall
    in each cell of the crop ``square`` (x0, y0, x1, y1)."""
    out = torch.zeros(len(COUNTED), grid, grid)
    x0, y0, x1, y1 = (float(v) for v in square)
    for channel, key in enumerate(COUNTED):
        for x, y in annotation[key]:
            col = min(grid - 1, max(0, int((x - x0) / (x1 - x0) * grid)))
            row = min(grid - 1, max(0, int((y - y0) / (y1 - y0) * grid)))
            out[channel, row, col] += 1
    return out


def square_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """The square around each box (x0, y0, x1, y1), 10% larger than its longer side."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(1).values[:, None] * 0.55
    return torch.cat([centre - half, centre + half], 1)


def _batch(crops: torch.Tensor, rotate: bool, maps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(uint8 grey crops -> the detector's input normalisation (mean 0.5, std 0.5), 3 channels;
    their counting ``maps``). ``rotate``: the batch turned by a random multiple of 90 degrees and
    mirrored half the time, its maps turned alike."""
    x = crops.float().div(255).sub(0.5).div(0.5)
    if rotate:
        turns, mirror = int(torch.randint(0, 4, ())), bool(torch.rand(()) < 0.5)
        x = torch.rot90(x, turns, (2, 3))
        maps = torch.rot90(maps, turns, (2, 3)) if maps is not None else None
        if mirror:
            x = x.flip(3)
            maps = maps.flip(3) if maps is not None else None
    return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last), maps


@torch.no_grad()
def accuracy(model: nn.Module, crops: torch.Tensor, labels: torch.Tensor, device: torch.device) -> float:
    model.eval()
    right = sum(
        int((model(_batch(crops[i : i + 256].to(device), False)[0]).argmax(1) == labels[i : i + 256].to(device)).sum())
        for i in range(0, len(crops), 256)
    )
    model.train()
    return right / max(len(crops), 1)


class CountingResNet(nn.Module):
    """A ResNet classifier that also counts. From layer2's features (stride 8) a 1x1 convolution
    predicts, per cell, how many line middles, arc middles and vertices lie there (non-negative);
    their sums over the crop (how many lines, arcs and vertices the shape has) feed a small network
    whose logits are added to the pooled features' logits and are also trained to name the shape by
    themselves (``count_only_loss``), so the class leans on the counts more than on how the train
    shapes look. Trained on both (:func:`train_classifier`), the features learn what a line end, a
    corner or an arc looks like locally, which transfers to figures never seen, where the class is
    mostly a count. The ResNet's own modules keep their names,
    so the detector starts from them as from a plain ResNet (:func:`backbone_weights`). With
    ``attributes``, a linear head of the pooled features also predicts the designers' attributes
    (:mod:`bongard_detector.attributes`)."""

    def __init__(self, body: nn.Module, layer2_width: int, attributes: bool = False) -> None:
        super().__init__()
        for name, module in body.named_children():
            self.add_module(name, module)
        self.density = nn.Sequential(nn.Conv2d(layer2_width, 64, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(64, len(COUNTED), 1), nn.Softplus())
        nn.init.constant_(self.density[2].bias, -4.0)  # start near zero counts (softplus(-4) = 0.018 a cell)
        self.count_head = nn.Sequential(nn.Linear(len(COUNTED), 64), nn.GELU(), nn.Linear(64, self.fc.out_features))
        self.attributes = nn.Linear(self.fc.in_features, ATTRIBUTE_COUNT) if attributes else None

    def heads(self, x: torch.Tensor) -> ClassifierHeads:
        """Every head's output on the batch ``x`` (:class:`ClassifierHeads`)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        density = self.density(x)
        if density.shape[-1] != COUNT_GRID:
            density = F.adaptive_avg_pool2d(density, COUNT_GRID) * (density.shape[-1] * density.shape[-2] / COUNT_GRID**2)
        pooled = self.avgpool(self.layer4(self.layer3(x))).flatten(1)
        by_count = self.count_head(density.sum((2, 3)))
        attributes = self.attributes(pooled) if self.attributes is not None else None
        return ClassifierHeads(density, self.fc(pooled) + by_count, by_count, attributes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(x).logits


class ClassifierHeads(NamedTuple):
    density: torch.Tensor  # the counting maps [N, 3, COUNT_GRID, COUNT_GRID]
    logits: torch.Tensor  # the class logits (those of the counts alone included)
    by_count: torch.Tensor  # the logits of the counts alone
    attributes: torch.Tensor | None  # the designers' attributes' logits [N, ATTRIBUTE_COUNT], when predicted


def build_classifier(professional: bool, counting: bool = True, attributes: bool = False) -> nn.Module:
    from torchvision.models import resnet18, resnet50

    body = (resnet50 if professional else resnet18)(weights=None, num_classes=10)
    return CountingResNet(body, 512 if professional else 128, attributes) if counting else body


def classifier_from_weights(weights: dict, professional: bool) -> nn.Module:
    """The classifier whose state dict ``weights`` is (its heads read from the keys), loaded, in eval mode."""
    model = build_classifier(professional, counting=any(k.startswith("density.") for k in weights),
                             attributes=any(k.startswith("attributes.") for k in weights))  # fmt: skip
    model.load_state_dict(weights)
    return model.eval()


def backbone_weights(weights: dict) -> dict:
    """The classifier's ResNet weights without its heads: what the detector's backbone loads."""
    return {k: v for k, v in weights.items() if not k.startswith(("fc.", "density.", "count_head.", "attributes."))}


def loss_weights(config) -> dict[str, float]:
    """The weight of each part of the classifier's loss (:func:`classifier_losses`) in its sum."""
    return {"class_loss": 1.0, "count_loss": config.classifier_count_weight, "count_only_loss": config.classifier_count_only_weight,
            "attribute_loss": config.classifier_attribute_weight}  # fmt: skip


def classifier_losses(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, maps: torch.Tensor | None,
                      attributes: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """The parts of the classifier's loss on one batch, unweighted (:func:`loss_weights`), each logged:
    ``class_loss`` (cross-entropy of the class logits) and, for a :class:`CountingResNet`,
    ``count_loss`` (squared error of the counting maps per cell, plus a smooth L1 on their totals,
    summed over the crop and averaged over the batch), ``count_only_loss`` (cross-entropy of
    the logits of the counts alone) and, where it predicts them and ``attributes`` (values, known)
    are given, ``attribute_loss`` (binary cross-entropy of the known attributes, averaged over them)."""
    if maps is None:
        return {"class_loss": F.cross_entropy(model(x), labels)}
    out = model.heads(x)
    per_cell = F.mse_loss(out.density, maps, reduction="sum")
    totals = F.smooth_l1_loss(out.density.sum((2, 3)), maps.sum((2, 3)), reduction="sum")
    parts = {
        "class_loss": F.cross_entropy(out.logits, labels),
        "count_loss": (per_cell + totals) / len(x),
        "count_only_loss": F.cross_entropy(out.by_count, labels),
    }
    if out.attributes is not None and attributes is not None:
        values, known = attributes
        each = F.binary_cross_entropy_with_logits(out.attributes.float(), values, reduction="none")
        parts["attribute_loss"] = (each * known).sum() / known.sum().clamp(min=1)
    return parts


def train_classifier(config, dataset, out_dir: str | Path, device: torch.device, *, echo=print, progress: bool = True,
                     world=None) -> tuple[dict, dict]:  # fmt: skip
    """Train the classifier of shape crops for ``config.classifier_steps`` steps (resuming from
    ``out_dir``'s last checkpoint) and return (its weights, a summary with the held-out accuracy)."""
    from tqdm import tqdm

    from bongard_detector.layouts import CLASSIFIER_LAYOUT
    from trainer_core import RetentionPolicy, TorchState, TrainingRun, list_committed

    started = time.perf_counter()
    crops, labels, maps, attributes, known = shape_crops(dataset, config.classifier_crop)
    held = min(HELD_OUT, len(crops) // 10)
    test_crops, test_labels, crops, labels = crops[:held], labels[:held], crops[held:], labels[held:]
    attributes, known = attributes[held:], known[held:]
    counting = config.classifier_count_weight > 0
    predict_attributes = counting and config.classifier_attribute_weight > 0
    if counting and maps is None:
        raise ValueError(f"{dataset.root}: the annotations do not record lines, arcs and vertices; regenerate the data "
                         "(detector reset data) or set classifier_count_weight to 0")  # fmt: skip
    maps = maps[held:] if counting else None
    model = build_classifier(config.professional, counting, predict_attributes).to(device).to(memory_format=torch.channels_last)
    steps = config.classifier_steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.classifier_learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.classifier_learning_rate, total_steps=steps, pct_start=0.15)
    out_dir = Path(out_dir)
    resume = out_dir if any(c.status == "ok" for c in list_committed(out_dir, CLASSIFIER_LAYOUT.name)) else None
    run = TrainingRun(config, layout=CLASSIFIER_LAYOUT, state=TorchState(model, optimizer, scheduler), run_dir=out_dir, resume=resume,
                      retention=RetentionPolicy(keep_last=1), disabled_sinks=("console",), seed=config.seed, world=world)  # fmt: skip
    step = run.position.get("step", 0)
    if run.resumed_from is not None:
        echo(f"resuming the shape classifier after step {step} from {run.resumed_from}")
    weights = loss_weights(config)
    from bongard_detector.training import autocast_and_scaler, backward_and_step

    autocast, scaler = autocast_and_scaler(device, config.precision)
    bar = tqdm(total=steps, initial=step, desc="shape classifier on box crops", unit="step", disable=not progress)
    model.train()
    with run, bar:  # an interruption still finishes writing the last checkpoint
        while step < steps:
            index = torch.randint(0, len(crops), (config.classifier_batch_size,))
            x, target = _batch(crops[index].to(device), True, maps[index].to(device) if counting else None)
            aux = (attributes[index].to(device), known[index].to(device)) if predict_attributes else None
            with autocast:
                parts = classifier_losses(model, x, labels[index].to(device), target, aux)
                loss = sum(weights[name] * value for name, value in parts.items())
            backward_and_step(loss, optimizer, scaler)
            scheduler.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            logged = {name: value.item() for name, value in parts.items()}
            run.log({"loss": loss.item(), **logged, "lr": scheduler.get_last_lr()[0]}, step=step)
            if step % CHECKPOINT_EVERY == 0 or step == steps:
                run.save(step=step, metrics={"loss": loss.item()}, position={"step": step})
    held_out = accuracy(model, test_crops, test_labels, device)
    echo(f"shape classifier: {steps} steps on {len(crops)} shape crops, held-out accuracy {held_out:.3f}")
    summary = {
        "steps": steps,
        "crops": len(crops),
        "crops_with_attributes": int(known.any(1).sum()) if predict_attributes else 0,
        "held_out_accuracy": round(held_out, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return model.state_dict(), summary


def latest_classifier(out_dir: str | Path) -> dict | None:
    """The weights of the last checkpoint :func:`train_classifier` committed in ``out_dir``."""
    from bongard_detector.layouts import CLASSIFIER_LAYOUT
    from trainer_core import TORCH_MODEL_FILE, list_committed, load_checkpoint

    committed = [c for c in list_committed(out_dir, CLASSIFIER_LAYOUT.name) if c.status == "ok"] if Path(out_dir).is_dir() else []
    return load_checkpoint(committed[-1].path, files=[TORCH_MODEL_FILE]).files[TORCH_MODEL_FILE] if committed else None


@torch.no_grad()
def dihedral_probabilities(classifier: nn.Module, crops: torch.Tensor) -> torch.Tensor:
    """Class probabilities of uint8 crops averaged over four of the eight rotations and mirrorings of
    each (the classes do not change under them): the identity, the half turn and the two mirrors
    about the diagonals, in one batched forward. Measured on the quick profile's classifier: as
    accurate as all eight on crops of the held-out human-designed shapes (0.594 against 0.58) and of
    the synthetic test shapes (0.916 against 0.911) at half the cost; one view alone is 3 points
    lower on the synthetic shapes and 1 on the held-out ones."""
    x, _ = _batch(crops, False)
    views = (x, torch.rot90(x, 1, (2, 3)).flip(3), torch.rot90(x, 2, (2, 3)), torch.rot90(x, 3, (2, 3)).flip(3))
    stacked = torch.cat(views).contiguous(memory_format=torch.channels_last)
    return classifier(stacked).softmax(1).view(len(views), len(x), -1).mean(0)


def rescore(classifier: nn.Module, images: torch.Tensor, outputs: list[dict], crop: int) -> list[dict]:
    """Multiply each detection's score by the classifier's probability of its label on the crop of
    its box. ``images``: the batch ``[B, C, H, W]`` in [0, 1]; ``outputs``: torchvision's detections
    per image (boxes, labels 1..10, scores). A box reported under several labels is cropped once."""
    from torchvision.ops import roi_align

    unique, inverse = [], []
    for out in outputs:
        boxes, index = torch.unique(out["boxes"], dim=0, return_inverse=True)
        unique.append(square_boxes(boxes) if len(boxes) else boxes)
        inverse.append(index)
    if not sum(len(b) for b in unique):
        return outputs
    classifier.eval()
    crops = roi_align(images[:, :1], unique, output_size=crop, aligned=True)
    probabilities = dihedral_probabilities(classifier, crops.clamp(0, 1).mul(255).round().to(torch.uint8))
    rescored, start = [], 0
    for out, boxes, index in zip(outputs, unique, inverse, strict=True):
        p = probabilities[start : start + len(boxes)][index, out["labels"] - 1]
        rescored.append({**out, "scores": out["scores"] * p})
        start += len(boxes)
    return rescored
