"""COCO box metrics through faster-coco-eval (pycocotools' algorithm in C++).

:func:`coco_metrics` takes the ground truth as a COCO dictionary and detections as COCO result
dictionaries (``image_id``, ``category_id``, ``bbox`` x/y/w/h, ``score``) and returns AP@0.5:0.95,
AP@0.5, AP@0.75, AP by object size (small/medium/large; None when the set has none of that size),
AP@0.5:0.95 per class (``per_class``) and AP@0.5 per class (``per_class_ap50``), None for a class
without ground truth. No detections at all give 0 everywhere.
A test checks the figures against pycocotools itself to 1e-6.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

SUMMARY = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")


def _index(api_class, dataset: dict):
    api = api_class()
    api.dataset = copy.deepcopy(dataset)
    api.createIndex()
    return api


def coco_metrics(ground_truth: dict, detections: list[dict], *, engine: str = "faster") -> dict:
    """COCO bbox metrics; ``engine`` = "faster" (faster-coco-eval) or "pycocotools" (the reference)."""
    names = {c["id"]: c["name"] for c in ground_truth["categories"]}
    present = {a["category_id"] for a in ground_truth["annotations"]}
    if not detections:
        areas = [a["area"] for a in ground_truth["annotations"]]
        sizes = {"AP_small": any(x < 32**2 for x in areas), "AP_medium": any(32**2 <= x < 96**2 for x in areas),
                 "AP_large": any(x >= 96**2 for x in areas)}  # fmt: skip
        zero = {name: (0.0 if sizes.get(name, True) else None) for name in SUMMARY}
        per_class = {names[k]: (0.0 if k in present else None) for k in names}
        return {**zero, "per_class": per_class, "per_class_ap50": dict(per_class), "detections": 0}
    if engine == "faster":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = _index(COCO, ground_truth)
        dt = gt.loadRes(copy.deepcopy(detections))
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [float(s) for s in evaluation.stats[:6]]
    out = {name: (None if value < 0 else value) for name, value in zip(SUMMARY, stats, strict=True)}
    precision = np.asarray(evaluation.eval["precision"])  # (iou thresholds, recall points, classes, areas, max dets)
    at_half = np.isclose(evaluation.params.iouThrs, 0.5)  # as pycocotools picks AP@0.5's threshold
    for key, thresholds in (("per_class", slice(None)), ("per_class_ap50", at_half)):
        out[key] = {}
        for k, category in enumerate(evaluation.params.catIds):
            values = precision[thresholds, :, k, 0, -1]
            values = values[values > -1]
            out[key][names[category]] = float(values.mean()) if values.size else None
    out["detections"] = len(detections)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` (N, 4) against ``b`` (M, 4), both x/y/w/h."""
    ax0, ay0, ax1, ay1 = a[:, 0, None], a[:, 1, None], (a[:, 0] + a[:, 2])[:, None], (a[:, 1] + a[:, 3])[:, None]
    bx0, by0, bx1, by1 = b[None, :, 0], b[None, :, 1], b[None, :, 0] + b[None, :, 2], b[None, :, 1] + b[None, :, 3]
    inter = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None) * np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / np.maximum(union, 1e-9)


def confusions(ground_truth: dict, detections: list[dict], *, iou: float = 0.5, min_score: float = 0.05) -> dict:
    """What each ground-truth shape was called: the highest-scoring detection of any class with IoU
    >= ``iou`` and score >= ``min_score`` names it (or ``missed``). Returns ``matrix``
    (true name -> predicted name -> count), ``accuracy`` (share of shapes named right) and ``top``:
    the off-diagonal pairs, most frequent first. Where the annotations record which program drew
    each shape (``shape``, as ``detector generate`` writes), also ``shapes``: per program name, its
    class, how many of its drawings there are, how many were named right and what they were called,
    the worst named first (then the most drawn): which figures a class's AP is lost on."""
    names = {c["id"]: c["name"] for c in ground_truth["categories"]}
    by_image: dict[int, list[dict]] = {}
    for d in detections:
        if d["score"] >= min_score:
            by_image.setdefault(d["image_id"], []).append(d)
    matrix: dict[str, dict[str, int]] = {}
    shapes: dict[str, dict] = {}
    right = total = 0
    for a in ground_truth["annotations"]:
        candidates = by_image.get(a["image_id"], [])
        predicted = "missed"
        if candidates:
            overlaps = _iou(np.array([a["bbox"]], dtype=float), np.array([d["bbox"] for d in candidates], dtype=float))[0]
            scores = np.array([d["score"] if o >= iou else -1.0 for d, o in zip(candidates, overlaps, strict=True)])
            if scores.max() >= 0:
                predicted = names[candidates[int(scores.argmax())]["category_id"]]
        true = names[a["category_id"]]
        matrix.setdefault(true, {}).setdefault(predicted, 0)
        matrix[true][predicted] += 1
        right, total = right + (predicted == true), total + 1
        if "shape" in a:
            shape = shapes.setdefault(a["shape"], {"class": true, "count": 0, "right": 0, "called": {}})
            shape["count"], shape["right"] = shape["count"] + 1, shape["right"] + (predicted == true)
            shape["called"][predicted] = shape["called"].get(predicted, 0) + 1
    top = sorted(((t, p, n) for t, row in matrix.items() for p, n in row.items() if p != t), key=lambda x: -x[2])
    out = {"matrix": matrix, "accuracy": round(right / total, 4) if total else None, "top": [list(x) for x in top],
           "iou": iou, "min_score": min_score}  # fmt: skip
    if shapes:
        ordered = sorted(shapes.items(), key=lambda kv: (kv[1]["right"] / kv[1]["count"], -kv[1]["count"], kv[0]))
        out["shapes"] = {name: {**v, "called": dict(sorted(v["called"].items(), key=lambda kv: -kv[1]))} for name, v in ordered}
    return out
