"""COCO box metrics through faster-coco-eval (pycocotools' algorithm in C++).

:func:`coco_metrics` takes the ground truth as a COCO dictionary and detections as COCO result
dictionaries (``image_id``, ``category_id``, ``bbox`` x/y/w/h, ``score``) and returns AP@0.5:0.95,
AP@0.5, AP@0.75, AP by object size (small/medium/large; None when the set has none of that size)
and AP per class (None for a class without ground truth). No detections at all give 0 everywhere.
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
        return {**zero, "per_class": {names[k]: (0.0 if k in present else None) for k in names}, "detections": 0}
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
    per_class = {}
    for k, category in enumerate(evaluation.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[names[category]] = float(values.mean()) if values.size else None
    out["per_class"] = per_class
    out["detections"] = len(detections)
    return out
