"""Training and evaluating the detector on a generated COCO set.

* data: :class:`CocoImages` reads ``annotations.json`` and the PNGs (grey, repeated to 3 channels),
  random flips for training; a DataLoader with ``workers`` processes, seeded (deterministic on CPU).
  ``workers=None`` (auto) loads in the training process on CPU, where loader processes only take
  cores from the convolutions (160 px on 2 cores: 19.3 images/s with none, 13 with two in an
  earlier run; not timed side by side on this noisy machine), and up to 8 processes on CUDA;
* optimisation: AdamW under OneCycleLR over all batches; stochastic weight averaging of the last
  ``swa_epochs`` epochs, whose batch-norm statistics are recomputed on training images before it is
  evaluated or saved;
* precision: ``auto`` = bfloat16 autocast on CUDA where the GPU has it (Ampere and later), else
  float16 with a gradient scaler; on a CPU with native bfloat16 (AVX-512 BF16 or AMX) bfloat16
  autocast, else float32 (:func:`cpu_has_bf16`); the losses are float32 in every case (model.py);
  ``bf16`` = bfloat16 autocast without a scaler (CPU or CUDA); ``fp32``;
* the shape classifier (``classifier_steps`` > 0, :mod:`bongard_detector.shape_classifier`) is
  trained first on crops of the training shapes; the detector starts from its ResNet weights and,
  at prediction, each detection's score is multiplied by the classifier's probability of its class;
* checkpoints through trainer-core after every epoch (weights, optimizer, schedule, RNGs, position),
  and every 200 classifier steps, so ``resume`` continues from the last one;
* ``frozen_stages``: the pretrained stem (and layer1) keep their weights during detection, which
  spares their gradients (about 20% of a step at 160 px); their batch-norm statistics still adapt.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bongard_detector.layouts import DETECTOR_LAYOUT, PACKAGE  # noqa: F401 - PACKAGE is read by the pipeline
from bongard_detector.model import build_detector


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    swa_epochs: int = 2
    professional: bool = False
    image_size: int = 416
    fpn_channels: int = 128
    head_convs: int = 2
    workers: int | None = None  # None = auto: 0 on CPU, up to 8 on CUDA
    precision: str = "auto"  # auto | fp32 | bf16
    seed: int = 0
    classifier_steps: int = 0  # the shape classifier, trained first (shape_classifier.py); 0 = none
    classifier_batch_size: int = 64
    classifier_crop: int = 64  # crop side in pixels
    classifier_learning_rate: float = 2e-3
    classifier_count_weight: float = 1.0  # weight of the counting loss (shape_classifier.py); 0 = a plain ResNet classifier
    classifier_count_only_weight: float = 1.0  # weight of the class loss of the counts alone (shape_classifier.py); 0 = none
    classifier_attribute_weight: float = 3.0  # weight of the designers' attributes' loss (attributes.py); 0 = none
    frozen_stages: int = 0  # backbone weights kept fixed in detection: 1 = the stem, 2 = the stem and layer1
    epoch_checkpoints: bool = True  # a resumable checkpoint after every epoch (False: only final/, no resume)


NOT_IN_MODEL = ("epoch_checkpoints",)  # settings that do not change the trained weights (left out of stage hashes)


class CocoImages(torch.utils.data.Dataset):
    def __init__(self, root: str | Path, train: bool = False):
        self.root = Path(root)
        with open(self.root / "annotations.json", encoding="utf-8") as f:
            self.coco = coco = json.load(f)
        self.images = coco["images"]
        self.by_image: dict[int, list[dict]] = {img["id"]: [] for img in self.images}
        for a in coco["annotations"]:
            self.by_image[a["image_id"]].append(a)
        self.train = train

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from PIL import Image

        info = self.images[index]
        with Image.open(self.root / info["file_name"]) as image:
            pixels = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255.0)
        boxes = torch.tensor([a["bbox"] for a in self.by_image[info["id"]]], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        labels = torch.tensor([a["category_id"] for a in self.by_image[info["id"]]], dtype=torch.int64)
        if self.train:
            size = pixels.shape[1]
            if torch.rand(()) < 0.5:
                pixels = pixels.flip(1)
                boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
            if torch.rand(()) < 0.5:
                pixels = pixels.flip(0)
                boxes[:, [1, 3]] = size - boxes[:, [3, 1]]
        return pixels.expand(3, -1, -1).contiguous(), {"boxes": boxes, "labels": labels, "image_id": info["id"]}


def _collate(batch):
    return tuple(zip(*batch, strict=True))


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)


def shuffled_order(count: int, seed: int, epoch: int) -> torch.Tensor:
    """The order a shuffling DataLoader of :func:`loader` draws in ``epoch`` (it takes one number
    from its generator for the workers' seeds first): a function of (seed, epoch) alone."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(count, generator=generator)


def loader(dataset, batch_size: int, workers: int, shuffle: bool, seed: int, epoch: int = 0, world=None):
    """Batches of ``dataset``; under torchrun (``world``) this rank's share of each global batch of
    the same global order (core's GlobalBatches), so the data order does not depend on the ranks."""
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    if world is not None and world.multi:
        from trainer_core import GlobalBatches

        order = shuffled_order(len(dataset), seed, epoch) if shuffle else torch.arange(len(dataset))
        shares = [b.tolist() for b in GlobalBatches(len(dataset), batch_size, seed=seed, epoch=epoch, world=world, order=order)]
        return torch.utils.data.DataLoader(dataset, batch_sampler=shares, num_workers=workers, collate_fn=_collate,
                                           generator=generator, worker_init_fn=_seed_worker)  # fmt: skip
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, collate_fn=_collate,
        generator=generator, worker_init_fn=_seed_worker, persistent_workers=False,
    )  # fmt: skip


def loader_workers(workers: int | None, device: torch.device) -> int:
    """Loader processes: as asked, else none on CPU (they would compete with the model for the
    cores) and up to 8 on CUDA (where the CPU only feeds the GPU)."""
    import os

    if workers is not None:
        return workers
    return min(8, os.cpu_count() or 1) if device.type == "cuda" else 0


def resolved_precision(device: torch.device, precision: str) -> str:
    """What ``precision`` (auto | fp32 | bf16) means on ``device``: ``bf16``, ``fp16`` (CUDA without
    bfloat16, with a gradient scaler) or ``fp32`` (see the module's docstring)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"  # bf16: float32's range, nothing to overflow, no scaling
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def autocast_and_scaler(device: torch.device, precision: str):
    """(the autocast context of ``precision`` on ``device``, its gradient scaler or None)."""
    resolved = resolved_precision(device, precision)
    if resolved == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16), None
    if resolved == "fp16":
        return torch.autocast(device.type, dtype=torch.float16), torch.amp.GradScaler(device.type)
    return torch.autocast(device.type, enabled=False), None


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX): there bfloat16 autocast
    trains the quick profile's ResNet-18 about 1.5x faster than float32; elsewhere it is emulated
    and slower, so ``auto`` stays float32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


@torch.no_grad()
def recompute_batchnorm(model, dataset, batch_size: int, workers: int, seed: int, device: torch.device, batches: int = 50) -> None:
    """Batch-norm statistics of an averaged model, from training images (FCOS cannot run
    ``torch.optim.swa_utils.update_bn``: in training mode it wants targets)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i, (images, _) in enumerate(loader(dataset, batch_size, workers, True, seed, epoch=10_000)):
        if i >= batches:
            break
        batch, _ = model.transform([img.to(device) for img in images])
        model.backbone(batch.tensors)
    for m, momentum in saved.items():
        m.momentum = momentum
    model.eval()


@torch.no_grad()
def predict(model, dataset, batch_size: int, workers: int, device: torch.device, classifier=None, crop: int = 64) -> list[dict[str, Any]]:
    """COCO result dictionaries for every image of ``dataset``; with a shape ``classifier``, scores
    are rescored by it and the detector's own score is kept as ``detector_score``."""
    from bongard_detector.shape_classifier import rescore

    model.eval()
    results = []
    for images, targets in loader(dataset, batch_size, workers, False, 0):
        images = torch.stack(images).to(device)
        outputs = model(list(images))
        final = rescore(classifier, images, outputs, crop) if classifier is not None else outputs
        for target, out, scored in zip(targets, outputs, final, strict=True):
            boxes = out["boxes"].float().cpu()
            boxes[:, 2:] -= boxes[:, :2]
            columns = zip(boxes.tolist(), out["labels"].tolist(), out["scores"].tolist(), scored["scores"].tolist(), strict=True)
            for box, label, detector_score, score in columns:
                result = {"image_id": int(target["image_id"]), "category_id": int(label), "bbox": [round(v, 3) for v in box],
                          "score": round(float(score), 5)}  # fmt: skip
                if classifier is not None:
                    result["detector_score"] = round(float(detector_score), 5)
                results.append(result)
    return results


def evaluate(model, data_dir: str | Path, batch_size: int = 8, workers: int = 0, device: torch.device | None = None,
             classifier=None, crop: int = 64) -> dict:  # fmt: skip
    """COCO metrics of the detector on ``data_dir`` (rescored by ``classifier`` when given, with the
    detector's own figures under ``detector_only``)."""
    from bongard_detector.metrics import coco_metrics, confusions

    device = device or next(model.parameters()).device
    dataset = CocoImages(data_dir)
    ground_truth = dataset.coco
    start = time.perf_counter()
    detections = predict(model, dataset, batch_size, workers, device, classifier, crop)
    scored = [{k: v for k, v in d.items() if k != "detector_score"} for d in detections]
    metrics = coco_metrics(ground_truth, scored)
    metrics["confusions"] = confusions(ground_truth, scored)
    if classifier is not None:
        alone = coco_metrics(ground_truth, [{**d, "score": full["detector_score"]} for d, full in zip(scored, detections, strict=True)])
        metrics["detector_only"] = {k: alone[k] for k in ("AP", "AP50", "AP75")}
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    metrics["images"] = len(dataset)
    return metrics


def backward_and_step(loss: torch.Tensor, optimizer, scaler) -> None:
    """One optimiser step on ``loss``, through ``scaler`` (float16 autocast) when there is one."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def resources(started_wall: float, started_cpu: float, images: int, device: torch.device, precision: str = "fp32") -> dict:
    """What a training cost: wall and CPU seconds (every thread of this process), peak resident
    memory, images per second, the precision it ran in, and on CUDA the GPU's peak allocated memory."""
    import resource

    wall = time.perf_counter() - started_wall
    cpu = time.process_time() - started_cpu
    out = {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "cpu_utilisation": round(cpu / wall, 2) if wall else None,
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "images_per_second": round(images / wall, 2) if wall else None, "device": str(device), "precision": precision}  # fmt: skip
    if device.type == "cuda":
        out["gpu_peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        out["gpu_name"] = torch.cuda.get_device_name(device)
    return out


def validation_ap(model, val_dir: str | Path, batch_size: int, device: torch.device) -> dict:
    """AP and AP@0.5 of the detector alone on the validation split (end of each epoch)."""
    from bongard_detector.metrics import coco_metrics

    dataset = CocoImages(val_dir)
    was_training = model.training
    detections = predict(model, dataset, batch_size, 0, device)
    model.train(was_training)
    metrics = coco_metrics(dataset.coco, detections)
    return {"val_AP": round(metrics["AP"], 4), "val_AP50": round(metrics["AP50"], 4)}


def train(config: TrainConfig, train_dir: str | Path, out_dir: str | Path, *, echo=print, progress: bool = True,
          val_dir: str | Path | None = None) -> dict:  # fmt: skip
    """Train (resuming from ``out_dir``'s last checkpoint when there is one) and save
    ``out_dir/final`` (the SWA model when ``swa_epochs`` > 0). With ``val_dir``, the detector's AP on
    it is measured at the end of every epoch (history, log, metrics). Returns a summary."""
    from torch.optim.swa_utils import AveragedModel
    from tqdm import tqdm

    from trainer_core import RetentionPolicy, TorchState, TrainingRun, World, current_world, list_committed, sync_batchnorm

    torch.manual_seed(config.seed)
    world = current_world()  # under torchrun: DDP; rank 0 alone trains the classifier, averages BN, exports
    device = torch.device(f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu")
    model = build_detector(config.professional, config.image_size, config.fpn_channels, config.head_convs).to(device)
    model = model.to(memory_format=torch.channels_last)  # 1.3-1.7x faster convolutions on CPU (measured)
    dataset = CocoImages(train_dir, train=True)
    steps_per_epoch = (len(dataset) + config.batch_size - 1) // config.batch_size
    frozen = {0: (), 1: ("conv1.", "bn1."), 2: ("conv1.", "bn1.", "layer1.")}[config.frozen_stages]
    for name, parameter in model.backbone.body.named_parameters():
        parameter.requires_grad_(not name.startswith(frozen))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch, pct_start=0.15
    )
    swa = AveragedModel(model) if config.swa_epochs else None
    swa_start = config.epochs - config.swa_epochs + 1
    out_dir = Path(out_dir)
    resume = (
        out_dir if any(c.status == "ok" for c in list_committed(out_dir / DETECTOR_LAYOUT.checkpoint_dir, DETECTOR_LAYOUT.name)) else None
    )
    run = TrainingRun(config, layout=DETECTOR_LAYOUT, state=TorchState(model, optimizer, scheduler), run_dir=out_dir, resume=resume,
                      retention=RetentionPolicy(keep_last=2), disabled_sinks=("console",), seed=config.seed)  # fmt: skip
    start_epoch, classifier = 1, None
    if run.resumed_from is not None:
        position = run.position
        # the average so far belongs to this run's SWA window; a longer run (more --epochs) moves the
        # window past the saved epoch, and its average starts afresh there
        if swa is not None and "swa.pt" in run.loaded_files and position["epoch"] >= swa_start:
            swa.load_state_dict(run.loaded_files["swa.pt"])
        start_epoch, classifier = position["epoch"] + 1, position.get("classifier")
        echo(f"resuming after epoch {position['epoch']} from {run.resumed_from}")
    elif config.classifier_steps and world.main:
        from bongard_detector.shape_classifier import backbone_weights, train_classifier

        try:
            weights, classifier = train_classifier(config, CocoImages(train_dir), out_dir / "classifier", device, echo=echo,
                                                   progress=progress, world=World())  # fmt: skip
        except BaseException as exc:
            if world.multi:
                world.publish("bongard_detector/classifier", f"failed: {type(exc).__name__}: {exc}")
            raise
        model.backbone.body.load_state_dict(backbone_weights(weights))
        if world.multi:
            world.publish("bongard_detector/classifier", "ok")
    elif config.classifier_steps:  # the other ranks wait for rank 0's classifier; DDP then copies its weights
        outcome = world.receive("bongard_detector/classifier", "rank 0's shape classifier", timeout_s=max(world.timeout_s, 24 * 3600))
        if outcome != "ok":
            raise RuntimeError(f"rank 0's shape classifier {outcome}")
    forward = model
    if world.multi:
        model = sync_batchnorm(model, device)  # torch's SyncBatchNorm on CUDA, core's GlobalBatchNorm on CPU
        forward = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast, scaler = autocast_and_scaler(device, config.precision)
    workers = loader_workers(config.workers, device)
    history, started, started_cpu, images_seen = [], time.perf_counter(), time.process_time(), 0
    with run:
        for epoch in range(start_epoch, config.epochs + 1):
            model.train()
            total, count = 0.0, 0
            bar = tqdm(loader(dataset, config.batch_size, workers, True, config.seed, epoch, world), total=steps_per_epoch,
                       desc=f"epoch {epoch}/{config.epochs}", disable=not progress or not world.main, unit="batch")  # fmt: skip
            for images, targets in bar:
                images = [img.to(device) for img in images]
                targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for t in targets]
                with autocast:
                    losses = forward(images, targets)
                    loss = sum(losses.values())
                backward_and_step(loss, optimizer, scaler)
                scheduler.step()
                total, count = total + loss.item(), count + 1
                images_seen += len(images)
                bar.set_postfix(loss=f"{total / count:.3f}")
            if swa is not None and epoch >= swa_start:
                swa.update_parameters(model)
            entry = {"epoch": epoch, "loss": total / max(count, 1)}
            if val_dir is not None and world.main:
                entry.update(validation_ap(model, val_dir, config.batch_size, device))
            history.append(entry)
            shown = f"  val AP {entry['val_AP']:.4f}  AP50 {entry['val_AP50']:.4f}" if "val_AP" in entry else ""
            echo(f"epoch {epoch}/{config.epochs} loss {entry['loss']:.4f}{shown}")
            run.log({k: v for k, v in entry.items() if k != "epoch"} | {"lr": scheduler.get_last_lr()[0]}, step=epoch * steps_per_epoch,
                    epoch=epoch)  # fmt: skip
            if config.epoch_checkpoints:
                run.save(step=epoch * steps_per_epoch, epoch=epoch, metrics={"loss": entry["loss"]},
                         position={"epoch": epoch, "classifier": classifier}, files={"swa.pt": swa.state_dict()} if swa is not None else None)  # fmt: skip
        seconds = time.perf_counter() - started
        used = resources(started, started_cpu, images_seen, device, resolved_precision(device, config.precision))
        final = model
        if swa is not None and config.epochs >= swa_start and world.main:  # only rank 0 exports the final model
            final = swa.module
            recompute_batchnorm(final, dataset, config.batch_size, workers, config.seed, device)
        files = {"model.pt": final.state_dict(), "config.json": asdict(config)}
        if config.classifier_steps:
            from bongard_detector.shape_classifier import latest_classifier

            files["classifier.pt"] = latest_classifier(out_dir / "classifier")
        run.export(out_dir, files, step=config.epochs * steps_per_epoch, epoch=config.epochs, name="final", model=final,
                   metrics={"loss": history[-1]["loss"] if history else None})  # fmt: skip
    return {"checkpoint": str(out_dir / "final"), "epochs": config.epochs, "seconds": round(seconds, 1),
            "images_per_second": round(images_seen / seconds, 2) if seconds else None, "history": history,
            "classifier": classifier, "resources": used}  # fmt: skip


def inference_device() -> torch.device:
    """Where a trained model runs by default: the GPU when there is one (evaluation, prediction)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_trained(path: str | Path, device: torch.device | None = None):
    """The model saved by :func:`train` (weights_only loading through trainer-core), on ``device``
    (default: :func:`inference_device`)."""
    from trainer_core import load_checkpoint

    files = load_checkpoint(path, files=["model.pt", "config.json"]).files  # not the classifier: load_classifier reads it
    config = TrainConfig(**files["config.json"])
    model = build_detector(config.professional, config.image_size, config.fpn_channels, config.head_convs)
    model.load_state_dict(files["model.pt"])
    return model.to(device or inference_device()).eval(), config


def load_classifier(path: str | Path, device: torch.device | None = None):
    """The shape classifier saved with the model by :func:`train` (on ``device``, default
    :func:`inference_device`), or None when it was trained without."""
    from bongard_detector.shape_classifier import classifier_from_weights
    from trainer_core import load_checkpoint, verify_checkpoint

    if "classifier.pt" not in verify_checkpoint(path, hashes=False).files:
        return None
    files = load_checkpoint(path, files=["classifier.pt", "config.json"]).files
    classifier = classifier_from_weights(files["classifier.pt"], TrainConfig(**files["config.json"]).professional)
    return classifier.to(device or inference_device())
