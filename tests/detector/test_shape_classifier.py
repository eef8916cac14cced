"""The shape classifier: its crops show the annotated shapes, an interrupted training resumes to
exactly the weights of an uninterrupted one, and rescoring weighs each detection by its class."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from bongard_detector import shape_classifier
from bongard_detector.generate import GenerationConfig, generate
from bongard_detector.programs import CLASSES
from bongard_detector.training import CocoImages, TrainConfig

CONFIG = TrainConfig(image_size=96, classifier_steps=4, classifier_batch_size=4, classifier_crop=32)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("crops")
    generate(GenerationConfig(count=12, image_size=96, max_shapes=2, min_size=0.3, max_size=0.5, seed=5), out, workers=1, progress=False)
    return CocoImages(out)


@pytest.fixture(scope="module")
def human_images(tmp_path_factory):
    """Renders of the shipped human-designed programs, a third of the shapes from the synthetic families."""
    from bongard_detector.programs import human_designed_shapes

    out = tmp_path_factory.mktemp("human")
    generate(GenerationConfig(count=12, image_size=96, max_shapes=2, min_size=0.3, max_size=0.5, seed=7, programs=str(human_designed_shapes()),
                              program_share=0.67, perturb=0.15), out, workers=1, progress=False)  # fmt: skip
    return CocoImages(out)


def test_one_crop_per_shape_with_its_class_its_ink_and_its_counts(images):
    crops, labels, maps, _, known = shape_classifier.shape_crops(images, 32)
    assert not known.any()  # the synthetic families have no designers' attributes
    annotations = images.coco["annotations"]
    assert crops.shape == (len(annotations), 1, 32, 32) and crops.dtype == torch.uint8
    assert labels.tolist() == [a["category_id"] - 1 for a in annotations]
    assert 0 <= labels.min() and labels.max() < len(CLASSES)
    # the shape fills its crop: every crop holds ink (white is 255)
    assert int(crops.amin(dim=(1, 2, 3)).max()) < 200
    # the counting maps hold every line middle, arc middle and vertex of the shape, where the ink is
    grid = shape_classifier.COUNT_GRID
    assert maps.shape == (len(annotations), 3, grid, grid)
    totals = maps.sum((2, 3))
    assert totals.tolist() == [[len(a["lines"]), len(a["arcs"]), len(a["vertices"])] for a in annotations]
    cells = torch.nn.functional.adaptive_avg_pool2d(crops.float(), grid)[:, 0]  # mean grey per cell
    marked = maps.sum(1) > 0
    assert (cells[marked] < 255).all()  # a counted point lies on a stroke: its cell holds ink


def test_a_human_designed_shape_carries_its_designers_attributes_and_only_those_they_decided(human_images):
    import csv

    from bongard_detector.attributes import ATTRIBUTE_COUNT, human_designed_attributes

    with open(human_designed_attributes(), encoding="utf-8") as f:
        rows = {r["shape function name"]: r for r in csv.DictReader(f, delimiter="\t")}
    crops = shape_classifier.shape_crops(human_images, 32)
    annotations = human_images.coco["annotations"]
    assert crops.attributes.shape == crops.known.shape == (len(annotations), ATTRIBUTE_COUNT)
    human = [i for i, a in enumerate(annotations) if a["shape"] in rows]
    assert human and len(human) < len(annotations)  # both kinds drawn
    for i, a in enumerate(annotations):
        if i not in human:
            assert not crops.known[i].any() and not crops.attributes[i].any()
            continue
        raw = [v for k, v in rows[a["shape"]].items() if k not in ("shape function name", "super class")]
        assert len(raw) == ATTRIBUTE_COUNT
        assert crops.known[i].tolist() == [v in ("0", "1") for v in raw]  # -1 (undecided) is masked
        assert crops.attributes[i].tolist() == [float(v == "1") for v in raw]
    assert crops.known[human].any(1).all()


def test_every_shipped_human_designed_shape_has_a_row_of_attributes():
    from bongard_detector.attributes import ATTRIBUTE_COUNT, attribute_table
    from bongard_detector.programs import human_designed_shapes, read_programs

    names, table = attribute_table()
    assert len(names) == ATTRIBUTE_COUNT and "has_line_crossing" in names
    assert {p.name for p in read_programs(human_designed_shapes())} == set(table)


def test_counting_maps_turn_and_mirror_with_their_crops():
    grid = shape_classifier.COUNT_GRID
    crops = torch.full((1, 1, 32, 32), 255, dtype=torch.uint8)
    crops[0, 0, 0:4, 8:12] = 0  # ink in the cell of row 0, column 2 (4-pixel cells)
    maps = torch.zeros(1, 3, grid, grid)
    maps[0, 2, 0, 2] = 1
    seen = set()
    for seed in range(24):
        torch.manual_seed(seed)
        x, turned = shape_classifier._batch(crops, True, maps)
        ink = torch.nn.functional.adaptive_avg_pool2d(x[:, :1], grid)[0, 0] < 0.9
        assert torch.equal(ink, turned[0, 2] > 0)
        seen.add(tuple(int(v) for v in (turned[0, 2] > 0).nonzero()[0]))
    assert len(seen) == 8  # all eight turns and mirrors occurred


def test_the_counting_heads_stay_apart_from_the_resnet_the_detector_starts_from(images, tmp_path):
    from bongard_detector.model import build_detector

    weights, _ = _weights(images, tmp_path / "run")
    assert any(k.startswith("density.") for k in weights) and any(k.startswith("count_head.") for k in weights)
    detector = build_detector(image_size=96, fpn_channels=32)
    detector.backbone.body.load_state_dict(shape_classifier.backbone_weights(weights))  # strict: exactly the ResNet's own weights
    assert torch.equal(detector.backbone.body.state_dict()["layer1.0.conv1.weight"], weights["layer1.0.conv1.weight"])
    plain, _ = shape_classifier.train_classifier(replace(CONFIG, classifier_count_weight=0.0), images, tmp_path / "plain", torch.device("cpu"),
                                                 echo=lambda line: None, progress=False)  # fmt: skip
    assert not any(k.startswith(("density.", "count_head.")) for k in plain)
    assert any(k.startswith("attributes.") for k in weights)  # the attributes head is a head too (stripped above)
    bare, _ = shape_classifier.train_classifier(replace(CONFIG, classifier_attribute_weight=0.0), images, tmp_path / "bare",
                                                torch.device("cpu"), echo=lambda line: None, progress=False)  # fmt: skip
    assert not any(k.startswith("attributes.") for k in bare)
    for trained in (weights, bare, plain):  # whatever heads it was trained with, a classifier loads from its weights alone
        loaded = shape_classifier.classifier_from_weights(trained, professional=False)
        assert not loaded.training and set(loaded.state_dict()) == set(trained)


def test_the_log_shows_each_part_of_the_loss_weighted_as_configured(images, tmp_path):
    def logged(config, name):
        shape_classifier.train_classifier(config, images, tmp_path / name, torch.device("cpu"), echo=lambda line: None, progress=False)
        return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    weighted = replace(CONFIG, classifier_count_weight=0.5, classifier_count_only_weight=2.0)
    records = logged(weighted, "counting")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for r in records:
        assert r["count_loss"] > 0 and r["count_only_loss"] > 0 and r["class_loss"] > 0
        assert r["loss"] == pytest.approx(r["class_loss"] + 0.5 * r["count_loss"] + 2.0 * r["count_only_loss"], rel=1e-5)
    plain = logged(replace(CONFIG, classifier_count_weight=0.0), "plain")  # no counting head: the class loss alone
    assert all("count_loss" not in r and "count_only_loss" not in r and r["loss"] == pytest.approx(r["class_loss"]) for r in plain)


def test_the_attribute_loss_is_logged_and_weighted_where_human_designed_shapes_are_drawn(human_images, tmp_path):
    config = replace(CONFIG, classifier_steps=3, classifier_batch_size=16, classifier_attribute_weight=3.0)
    _, summary = shape_classifier.train_classifier(config, human_images, tmp_path / "run", torch.device("cpu"), echo=lambda line: None,
                                                   progress=False)  # fmt: skip
    assert summary["crops_with_attributes"] > 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["attribute_loss"] > 0 for r in records)
    for r in records:
        assert r["loss"] == pytest.approx(r["class_loss"] + r["count_loss"] + r["count_only_loss"] + 3.0 * r["attribute_loss"], rel=1e-5)


def _weights(images, root):
    weights, summary = shape_classifier.train_classifier(CONFIG, images, root, torch.device("cpu"), echo=lambda line: None, progress=False)
    return weights, summary


def test_interrupted_training_resumes_to_the_same_weights(images, tmp_path, monkeypatch):
    torch.manual_seed(0)
    straight, summary = _weights(images, tmp_path / "straight")
    assert summary["steps"] == 4 and 0.0 <= summary["held_out_accuracy"] <= 1.0
    assert straight["fc.weight"].shape[0] == len(CLASSES)

    monkeypatch.setattr(shape_classifier, "CHECKPOINT_EVERY", 2)
    calls = {"n": 0}
    real_batch = shape_classifier._batch

    def crash_on_third_training_batch(crops, rotate, maps=None):
        calls["n"] += rotate
        if rotate and calls["n"] == 3:
            raise KeyboardInterrupt
        return real_batch(crops, rotate, maps)

    monkeypatch.setattr(shape_classifier, "_batch", crash_on_third_training_batch)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        _weights(images, tmp_path / "interrupted")
    assert sorted(p.name for p in (tmp_path / "interrupted").glob("step_*")) == ["step_00002"]
    # the run API's record of the interrupted run: its metrics and config beside the checkpoint
    assert (tmp_path / "interrupted" / "metrics.jsonl").read_text().strip() and (tmp_path / "interrupted" / "config.yaml").is_file()

    torch.manual_seed(123)  # the resumed run restores the RNGs of step 2, whatever the process's state
    resumed, _ = _weights(images, tmp_path / "interrupted")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


class AlwaysSays(torch.nn.Module):
    """A stand-in classifier certain that every crop shows class index ``k``."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        logits = torch.full((len(x), len(CLASSES)), -30.0)
        logits[:, self.k] = 30.0
        return logits


def test_rescoring_keeps_the_classifier_s_class_and_drops_the_others():
    images = torch.ones(2, 3, 64, 64)
    box = torch.tensor([[10.0, 10.0, 40.0, 30.0]])
    outputs = [
        {"boxes": box.repeat(3, 1), "labels": torch.tensor([3, 5, 3]), "scores": torch.tensor([0.9, 0.8, 0.4])},  # one box, 3 labels
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0)},  # nothing found
    ]
    rescored = shape_classifier.rescore(AlwaysSays(2), images, outputs, crop=16)  # index 2 = label 3
    assert torch.allclose(rescored[0]["scores"], torch.tensor([0.9, 0.0, 0.4]), atol=1e-6)
    assert torch.equal(rescored[0]["labels"], outputs[0]["labels"]) and len(rescored[1]["scores"]) == 0


def test_view_averaged_probabilities_do_not_change_when_the_crop_is_turned_or_mirrored():
    torch.manual_seed(0)
    classifier = shape_classifier.build_classifier(False).eval()
    crops = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8)
    probabilities = shape_classifier.dihedral_probabilities(classifier, crops)
    assert probabilities.shape == (3, len(CLASSES))
    assert torch.allclose(probabilities.sum(1), torch.ones(3), atol=1e-5)
    for turned in (torch.rot90(crops, 2, (2, 3)), crops.transpose(2, 3)):  # half turn, diagonal mirror
        assert torch.allclose(shape_classifier.dihedral_probabilities(classifier, turned), probabilities, atol=1e-5)
    single = classifier(shape_classifier._batch(crops, False)[0]).softmax(1)
    assert not torch.allclose(single, probabilities, atol=1e-4)  # the views are averaged, not one taken
