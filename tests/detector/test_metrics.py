"""The COCO metrics wrapper: agrees with pycocotools, perfect predictions give 1, none give 0."""

from __future__ import annotations

import numpy as np
import pytest

from bongard_detector.generate import GenerationConfig, generate
from bongard_detector.metrics import SUMMARY, coco_metrics


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory):
    return generate(GenerationConfig(count=24, image_size=200, seed=11), tmp_path_factory.mktemp("gt"), workers=1, progress=False)


def test_perfect_predictions_score_one_and_none_score_zero(ground_truth):
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0} for a in ground_truth["annotations"]
    ]
    result = coco_metrics(ground_truth, perfect)
    assert result["AP"] == result["AP50"] == result["AP75"] == 1.0
    present = {ground_truth["categories"][a["category_id"] - 1]["name"] for a in ground_truth["annotations"]}
    assert all(result["per_class"][name] == result["per_class_ap50"][name] == 1.0 for name in present)
    empty = coco_metrics(ground_truth, [])
    assert empty["AP"] == empty["AP50"] == 0.0 and empty["detections"] == 0


def test_agrees_with_pycocotools(ground_truth):
    rng = np.random.default_rng(0)
    detections = []
    for a in ground_truth["annotations"]:
        for _ in range(2):  # a duplicate per object, wrong classes, jittered boxes, random scores
            category = int(rng.integers(1, 11)) if rng.random() < 0.3 else a["category_id"]
            box = (np.array(a["bbox"]) + rng.normal(0, 1.5, 4)).tolist()
            detections.append({"image_id": a["image_id"], "category_id": category, "bbox": box, "score": float(rng.random())})
    ours = coco_metrics(ground_truth, detections)
    reference = coco_metrics(ground_truth, detections, engine="pycocotools")
    assert 0.05 < ours["AP"] < 0.95
    for name in SUMMARY:
        assert (ours[name] is None and reference[name] is None) or ours[name] == pytest.approx(reference[name], abs=1e-6), name
    for key in ("per_class", "per_class_ap50"):
        for name, value in ours[key].items():
            assert (value is None and reference[key][name] is None) or value == pytest.approx(reference[key][name], abs=1e-6), (key, name)
    present = [v for v in ours["per_class_ap50"].values() if v is not None]
    assert np.mean(present) == pytest.approx(ours["AP50"], abs=1e-6)  # the per-class AP@0.5 figures average to AP@0.5
    assert ours["per_class_ap50"] != ours["per_class"]  # jittered boxes: AP@0.5 per class is not AP@0.5:0.95 per class
