"""Detections on any image (`detector predict`) and evaluation on any COCO folder (`detector evaluate --data`).

* :func:`image_paths`: PNG/JPEG files given one by one or as folders (their images, sorted, not recursive);
* :func:`letterbox`: an image of any size or mode as the detector saw its training images: grey,
  padded with white to a square (ink is black on white, so padding adds nothing to detect) and
  resized to the model's side; :class:`Letterbox` maps boxes back to the original pixels;
* :func:`predict_images`: the detector (rescored by its shape classifier when it has one) in batches;
* :func:`draw`: each box with its class name and score on a colour copy of the image;
* :func:`ground_truth`: a folder's ``annotations.json`` with its categories mapped to ours by name
  (``hexagon*``, ``Quasi-Sector`` and ``quasi sector`` all name ``quasi_sector`` / ``hexagon``); an
  unknown name is one clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bongard_detector.programs import CLASSES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#f032e6", "#9a6324", "#800000", "#000075")


class InputError(ValueError):
    """A bad input (missing file, unreadable image, unknown category); the message says the fix."""


def image_paths(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"{path}: no PNG or JPEG images in this folder; give image files or a folder of them")
            paths += found
        elif path.is_file():
            paths.append(path)
        else:
            raise InputError(f"{path}: no such file or folder; give PNG/JPEG images or folders of them")
    return paths


@dataclass(frozen=True)
class Letterbox:
    scale: float  # model pixels per original pixel
    offset: tuple[float, float]  # padding added on the left and top, in original pixels
    width: int
    height: int

    def to_original(self, boxes: torch.Tensor) -> torch.Tensor:
        """Boxes (x0, y0, x1, y1) in the model's pixels -> the original image's, clipped to it."""
        out = boxes / self.scale
        out[:, [0, 2]] = (out[:, [0, 2]] - self.offset[0]).clamp(0, self.width)
        out[:, [1, 3]] = (out[:, [1, 3]] - self.offset[1]).clamp(0, self.height)
        return out


def letterbox(image, size: int) -> tuple[torch.Tensor, Letterbox]:
    """(3 x size x size tensor in [0, 1], the mapping back) of a PIL image of any mode and size."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P"):  # transparent pixels are background: white
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    grey = image.convert("L")
    width, height = grey.size
    side = max(width, height)
    square = Image.new("L", (side, side), 255)
    left, top = (side - width) // 2, (side - height) // 2
    square.paste(grey, (left, top))
    resized = square.resize((size, size), Image.Resampling.BILINEAR) if side != size else square
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)
    return pixels.expand(3, -1, -1).contiguous(), Letterbox(size / side, (float(left), float(top)), width, height)


def open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image PIL can read; give PNG or JPEG files") from None


@torch.no_grad()
def predict_images(model, images: list, size: int, *, classifier=None, crop: int = 64, batch_size: int = 8,
                   device: torch.device | None = None) -> list[list[dict]]:  # fmt: skip
    """Per image (PIL), its detections as ``{"bbox": [x, y, w, h], "category_id", "category", "score"}``
    in the image's own pixels, best first."""
    from bongard_detector.shape_classifier import rescore

    device = device or next(model.parameters()).device
    model.eval()
    results: list[list[dict]] = []
    for start in range(0, len(images), batch_size):
        boxed = [letterbox(image, size) for image in images[start : start + batch_size]]
        batch = torch.stack([pixels for pixels, _ in boxed]).to(device)
        outputs = model(list(batch))
        if classifier is not None:
            outputs = rescore(classifier, batch, outputs, crop)
        for (_, mapping), out in zip(boxed, outputs, strict=True):
            boxes = mapping.to_original(out["boxes"].float().cpu())
            order = torch.argsort(out["scores"].cpu(), descending=True)
            detections = []
            for i in order.tolist():
                x0, y0, x1, y1 = boxes[i].tolist()
                label = int(out["labels"][i])
                detections.append({"bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)], "category_id": label,
                                   "category": CLASSES[label - 1], "score": round(float(out["scores"][i]), 5)})  # fmt: skip
            results.append(detections)
    return results


def draw(image, detections: list[dict]):
    """A colour copy of ``image`` with each detection's box, class name and score."""
    from PIL import ImageDraw, ImageFont

    canvas = image.convert("RGB")
    pen = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 200))
    font = ImageFont.load_default(size=max(10, round(max(canvas.size) / 30)))
    for d in detections:
        x, y, w, h = d["bbox"]
        colour = COLOURS[(d["category_id"] - 1) % len(COLOURS)]
        pen.rectangle([x, y, x + w, y + h], outline=colour, width=width)
        label = f"{d['category']} {d['score']:.2f}"
        left, top, right, bottom = pen.textbbox((0, 0), label, font=font)
        ty = y - (bottom - top) - 2 if y - (bottom - top) - 2 >= 0 else y + h + 1
        pen.rectangle([x, ty, x + right - left + 2, ty + bottom - top + 2], fill=colour)
        pen.text((x + 1 - left, ty + 1 - top), label, fill="white", font=font)
    return canvas


def normalise_name(name: str) -> str:
    return str(name).strip().rstrip("*").strip().lower().replace("-", "_").replace(" ", "_")


def ground_truth(data_dir: str | Path) -> dict:
    """The folder's COCO ground truth with our category ids (mapped by name); InputError for a
    missing or malformed file and for names we do not detect."""
    data_dir = Path(data_dir)
    path = data_dir / "annotations.json"
    if not path.is_file():
        raise InputError(f"{path}: no such file; --data takes a folder with images/ and annotations.json (as `detector generate` writes)")
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
        categories = {c["id"]: normalise_name(c["name"]) for c in coco["categories"]}
        images, annotations = coco["images"], coco["annotations"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not a COCO annotation file ({type(exc).__name__}: {exc}); it needs images, annotations and categories"
        ) from None
    unknown = sorted({name for name in categories.values() if name not in CLASSES})
    if unknown:
        raise InputError(f"{path}: unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
                         f"the detector knows {', '.join(CLASSES)} (a trailing * and any case are accepted)")  # fmt: skip
    ours = {old: CLASSES.index(name) + 1 for old, name in categories.items()}
    try:
        mapped = [{**a, "category_id": ours[a["category_id"]]} for a in annotations]
    except KeyError as exc:
        raise InputError(f"{path}: an annotation names category id {exc.args[0]}, which is not in its categories") from None
    from bongard_detector.generate import categories as our_categories

    return {**coco, "images": images, "annotations": mapped, "categories": our_categories()}


def evaluate_folder(model, data_dir: str | Path, size: int, *, classifier=None, crop: int = 64, batch_size: int = 8,
                    progress: bool = False) -> dict:  # fmt: skip
    """COCO metrics (and class confusions) of the detector on any folder of images with an
    ``annotations.json``: images of any size and mode, categories mapped by name."""
    import time

    from tqdm import tqdm

    from bongard_detector.metrics import coco_metrics, confusions

    truth = ground_truth(data_dir)
    start = time.perf_counter()
    detections = []
    bar = tqdm(total=len(truth["images"]), unit="img", desc="evaluating", disable=not progress)
    for first in range(0, len(truth["images"]), batch_size):
        infos = truth["images"][first : first + batch_size]
        images = []
        for info in infos:
            path = Path(data_dir) / info["file_name"]
            if not path.is_file():
                raise InputError(f"{path}: listed in annotations.json but missing; regenerate the folder or fix its file_name")
            images.append(open_image(path))
        for info, found in zip(
            infos, predict_images(model, images, size, classifier=classifier, crop=crop, batch_size=batch_size), strict=True
        ):
            detections += [{"image_id": info["id"], "category_id": d["category_id"], "bbox": d["bbox"], "score": d["score"]} for d in found]
        bar.update(len(infos))
    bar.close()
    metrics = coco_metrics(truth, detections)
    metrics["confusions"] = confusions(truth, detections)
    metrics["images"], metrics["seconds"] = len(truth["images"]), round(time.perf_counter() - start, 2)
    return metrics


def predict_to_folder(paths: list[Path], model, out: str | Path, *, image_size: int, classifier=None, crop: int = 64,
                      score_threshold: float = 0.3, batch_size: int = 8, progress: bool = False) -> dict:  # fmt: skip
    """`detector predict`: ``out/<name>.png`` (the image with its detections drawn) per image and
    ``out/predictions.json`` (COCO-style ``images``, ``annotations`` with class names and scores,
    ``categories``). Returns that JSON's content."""
    from tqdm import tqdm

    from bongard_detector.generate import categories
    from trainer_core import atomic_write_json

    model.score_thresh = min(model.score_thresh, score_threshold)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    images, results = [], []
    bar = tqdm(total=len(paths), unit="img", desc="predicting", disable=not progress)
    for first in range(0, len(paths), batch_size):
        chunk = paths[first : first + batch_size]
        pictures = [open_image(p) for p in chunk]
        found = predict_images(model, pictures, image_size, classifier=classifier, crop=crop, batch_size=batch_size)
        for path, picture, detections in zip(chunk, pictures, found, strict=True):
            kept = [d for d in detections if d["score"] >= score_threshold]
            stem, n = path.stem, 1
            while stem in used:  # two inputs of the same name (from different folders)
                stem, n = f"{path.stem}_{n}", n + 1
            used.add(stem)
            image_id = len(images) + 1
            draw(picture, kept).save(out / f"{stem}.png", compress_level=1)
            images.append(
                {"id": image_id, "file_name": str(path), "annotated": f"{stem}.png", "width": picture.width, "height": picture.height}
            )
            results += [{"image_id": image_id, **d} for d in kept]
        bar.update(len(chunk))
    bar.close()
    summary = {"images": images, "annotations": results, "categories": categories(), "score_threshold": score_threshold,
               "rescored": classifier is not None}  # fmt: skip
    atomic_write_json(out / "predictions.json", summary)
    return summary
