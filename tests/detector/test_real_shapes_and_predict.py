"""The human-designed shapes as training data (split by shape, perturbed within their class),
per-epoch validation, resource figures, and `detector evaluate --data` / `detector predict` on any images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bongard_detector.cli import cli
from bongard_detector.pipeline import Pipeline, make_config
from bongard_detector.programs import CLASSES, human_designed_shapes, read_programs
from bongard_detector.shapes import perturb, shape_split

TINY = dict(dataset_size=24, test_size=8, real_size=8, val_size=6, image_size=128, epochs=2, classifier_steps=2, workers=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny quick-profile run without per-epoch checkpoints."""
    root = tmp_path_factory.mktemp("detector_real")
    results = Pipeline(make_config("quick", epoch_checkpoints=False, **TINY), root, echo=lambda line: None, progress=False).run()
    return root, results


def test_the_split_is_by_shape_deterministic_and_stratified():
    programs = read_programs(human_designed_shapes())
    split = shape_split(programs)
    train, held = {p.name for p in split.train}, {p.name for p in split.held_out}
    assert not train & held and train | held == {p.name for p in programs}
    assert shape_split(list(reversed(programs))).held_out == tuple(p for p in reversed(programs) if p.name in held)
    for cls in CLASSES:  # every super class on both sides, about a fifth held out
        n_held = sum(p.super_class == cls for p in split.held_out)
        n_all = sum(p.super_class == cls for p in programs)
        assert n_held >= 1 and n_all - n_held >= 1 and abs(n_held - 0.2 * n_all) <= 1, cls


def test_a_split_seed_draws_another_split_of_the_same_sizes():
    programs = read_programs(human_designed_shapes())
    shipped, other = shape_split(programs), shape_split(programs, seed=1)
    assert shape_split(programs, seed=0) == shipped and shape_split(programs, seed=1) == other
    assert {p.name for p in other.held_out} != {p.name for p in shipped.held_out}
    assert other.counts() == shipped.counts()  # the same number of held-out shapes in every super class
    assert not {p.name for p in other.train} & {p.name for p in other.held_out}


def test_a_split_seed_reaches_the_data_and_leaves_the_shipped_split_alone(tmp_path):
    assert "split_seed" not in make_config("quick", split_seed=0).data_settings()  # existing roots keep their data
    pipeline = Pipeline(make_config("quick", split_seed=2, **TINY), tmp_path, echo=lambda line: None, progress=False)
    assert pipeline.data_hash() != Pipeline(make_config("quick", **TINY), tmp_path).data_hash()
    record, _ = pipeline.generate_data()
    held = {p.name for p in read_programs(tmp_path / "processed_data/shapes/split_2/held_out_shapes.tsv")}
    assert held == {p.name for p in shape_split(read_programs(human_designed_shapes()), seed=2).held_out}
    assert record["metrics"]["split_seed"] == 2 and not (tmp_path / "processed_data/shapes/held_out_shapes.tsv").exists()
    real = json.loads((next((tmp_path / "processed_data/real_bongard").iterdir()) / "annotations.json").read_text())
    assert {a["shape"] for a in real["annotations"]} <= held
    train = json.loads((tmp_path / "processed_data/quick_synthetic/train/annotations.json").read_text())
    drawn = {a.get("shape") for a in train["annotations"]} - {None}
    assert drawn and not drawn & held


def test_a_perturbed_program_keeps_its_super_class_structure():
    rng = np.random.default_rng(7)
    for program in read_programs(human_designed_shapes()):
        changed = perturb(program, rng, 0.15)
        assert changed.super_class == program.super_class and len(changed.actions) == len(program.actions)
        values = [(a.length, a.radius) for a in program.actions]
        for a, b in zip(program.actions, changed.actions, strict=True):
            assert a.kind == b.kind
            assert np.sign(a.turn) == np.sign(b.turn) and np.sign(a.angle) == np.sign(b.angle)  # zero turns stay zero
            assert abs(b.length - a.length) <= 0.15 * a.length + 1e-3 and abs(b.turn - a.turn) <= 0.03 * abs(a.turn) + 1e-3
        for (i, x), (j, y) in [((i, x), (j, y)) for i, x in enumerate(values) for j, y in enumerate(values) if i < j]:
            if x == y:  # equal lengths and radii stay equal (a sector's radii and its arc)
                assert (changed.actions[i].length, changed.actions[i].radius) == (changed.actions[j].length, changed.actions[j].radius)
    assert any(perturb(p, rng, 0.15) != p for p in read_programs(human_designed_shapes()))


def test_held_out_shapes_are_never_training_data_and_are_the_real_set(trained):
    root, results = trained
    shapes = root / "processed_data" / "shapes"
    train = {p.name for p in read_programs(shapes / "train_shapes.tsv")}
    held = {p.name for p in read_programs(shapes / "held_out_shapes.tsv")}
    assert train and held and not train & held
    assert results["data"]["shapes"]["held_out"]["total"] == len(held)
    coco = json.loads((root / "processed_data/quick_synthetic/train/annotations.json").read_text())
    assert coco["info"]["config"]["programs"].endswith("train_shapes.tsv") and 0 < coco["info"]["config"]["program_share"] < 1
    real = next((root / "processed_data/real_bongard").iterdir())
    assert json.loads((real / "annotations.json").read_text())["info"]["config"]["programs"].endswith("held_out_shapes.tsv")


def test_validation_each_epoch_resources_and_no_epoch_checkpoints(trained):
    root, results = trained
    history = results["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2] and all(0 <= h["val_AP50"] <= 1 for h in history)
    logged = [json.loads(line) for line in (root / "models/quick/metrics.jsonl").read_text().splitlines()]
    assert sum("val_AP50" in m.get("metrics", m) for m in logged) == 2
    assert "val AP" in (root / "logs/training.log").read_text()
    used = results["training"]["resources"]
    assert used["peak_rss_mib"] > 100 and used["cpu_seconds"] > 0 and used["images_per_second"] > 0
    assert not list((root / "models/quick").glob("epochs/epoch_*")) and (root / "models/quick/final/manifest.json").is_file()
    confusion = results["evaluation"]["real"]["confusions"]
    assert sum(sum(row.values()) for row in confusion["matrix"].values()) == len(
        json.loads((next((root / "processed_data/real_bongard").iterdir()) / "annotations.json").read_text())["annotations"]
    )


def test_evaluate_any_folder_from_a_tsv(trained, tmp_path):
    root, _ = trained
    tsv = tmp_path / "some.tsv"
    tsv.write_text("shape function name\tshape name\tsuper class\tset of base actions\tturn angles\n"
                   "sq\tsquare\tquadrangle\tline_1.0, line_1.0, line_1.0, line_1.0\tL0--L90--L90--L90\n"
                   "tri\ttriangle\ttriangle*\tline_1.0, line_1.0, line_1.0\tL0--L120--L120\n")  # fmt: skip
    runner = CliRunner()
    data = tmp_path / "D"
    made = runner.invoke(
        cli, ["generate", "--programs", str(tsv), "--output", str(data), "--count", "5", "--image-size", "128", "--workers", "1"]
    )
    assert made.exit_code == 0, made.output
    out = runner.invoke(cli, ["evaluate", "--data", str(data), "--root", str(root), "--profile", "quick", "--json"])
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.output)[str(data)]
    assert {"AP", "AP50", "AP75", "per_class", "confusions"} <= set(metrics) and metrics["images"] == 5
    assert {k for k, v in metrics["per_class"].items() if v is not None} == {"triangle", "quadrangle"}
    assert {k for k, v in metrics["per_class_ap50"].items() if v is not None} == {"triangle", "quadrangle"}
    printed = runner.invoke(cli, ["evaluate", "--data", str(data), "--root", str(root), "--profile", "quick"])
    ap50_line = next(line for line in printed.output.splitlines() if "per class (AP@0.5)" in line)
    assert f"quadrangle {metrics['per_class_ap50']['quadrangle']:.3f}" in ap50_line and "per class (AP@0.5:0.95)" in printed.output
    figures = metrics["confusions"]["shapes"]  # the figures of the TSV, by name
    assert set(figures) == {"sq", "tri"} and sum(v["count"] for v in figures.values()) == len(
        json.loads((data / "annotations.json").read_text())["annotations"])  # fmt: skip
    misnamed = [name for name, v in figures.items() if v["right"] < v["count"]]
    worst_line = [line for line in printed.output.splitlines() if "worst named figures" in line]
    assert (f"{misnamed[0]} ({figures[misnamed[0]]['class']})" in worst_line[0]) if misnamed else not worst_line
    # categories are matched by name, not id: renumbered and renamed, the same figures
    coco = json.loads((data / "annotations.json").read_text())
    renames = {c["id"]: (100 + c["id"], c["name"].upper() + "*") for c in coco["categories"]}
    coco["categories"] = [{**c, "id": renames[c["id"]][0], "name": renames[c["id"]][1]} for c in coco["categories"]]
    coco["annotations"] = [{**a, "category_id": renames[a["category_id"]][0]} for a in coco["annotations"]]
    (data / "annotations.json").write_text(json.dumps(coco))
    again = runner.invoke(cli, ["evaluate", "--data", str(data), "--root", str(root), "--profile", "quick", "--json"])
    assert json.loads(again.output)[str(data)]["AP"] == metrics["AP"]
    coco["categories"][0]["name"] = "teapot"
    (data / "annotations.json").write_text(json.dumps(coco))
    unknown = runner.invoke(cli, ["evaluate", "--data", str(data), "--root", str(root), "--profile", "quick"])
    assert unknown.exit_code == 2 and "'teapot'" in unknown.output and "Traceback" not in unknown.output
    missing = runner.invoke(cli, ["evaluate", "--data", str(tmp_path / "nowhere"), "--root", str(root), "--profile", "quick"])
    assert missing.exit_code == 2 and "annotations.json" in missing.output


def _rectangle_image(size, box, mode):
    from PIL import Image, ImageDraw

    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).rectangle(box, outline=0, width=3)
    return image.convert(mode)


@pytest.mark.parametrize(("size", "mode"), [((300, 150), "RGB"), ((90, 200), "L"), ((640, 640), "RGBA")])
def test_letterbox_maps_boxes_back_to_the_original_pixels(size, mode):
    import torch

    from bongard_detector.predict import letterbox

    box = (size[0] * 0.2, size[1] * 0.3, size[0] * 0.6, size[1] * 0.8)
    pixels, mapping = letterbox(_rectangle_image(size, box, mode), 160)
    assert pixels.shape == (3, 160, 160) and float(pixels.max()) == 1.0
    ys, xs = np.nonzero(pixels[0].numpy() < 0.5)
    back = mapping.to_original(torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32))[0]
    tolerance = 2 / mapping.scale + 1
    assert np.allclose(back.numpy(), [box[0], box[1], box[2] + 1, box[3] + 1], atol=tolerance)


def test_predict_writes_one_annotated_png_per_image_and_one_json(trained, tmp_path):
    from PIL import Image

    root, _ = trained
    folder = tmp_path / "in"
    folder.mkdir()
    _rectangle_image((300, 150), (40, 30, 200, 120), "RGB").save(folder / "wide.jpg")
    _rectangle_image((128, 128), (10, 10, 60, 90), "L").save(folder / "grey.png")
    (folder / "notes.txt").write_text("not an image")  # ignored: not PNG/JPEG
    other = tmp_path / "other"
    other.mkdir()
    _rectangle_image((200, 260), (20, 20, 100, 100), "RGBA").save(other / "grey.png")  # same name, another folder
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(cli, ["predict", str(folder), str(other / "grey.png"), "--output", str(out), "--root", str(root),
                                 "--profile", "quick", "--score-threshold", "0", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = json.loads((out / "predictions.json").read_text())
    assert json.loads(result.output) == written
    assert sorted(p.name for p in out.glob("*.png")) == ["grey.png", "grey_1.png", "wide.png"]
    for image in written["images"]:
        with Image.open(out / image["annotated"]) as drawn:
            assert drawn.size == (image["width"], image["height"]) and drawn.mode == "RGB"
    for d in written["annotations"]:
        image = written["images"][d["image_id"] - 1]
        x, y, w, h = d["bbox"]
        assert 0 <= x <= x + w <= image["width"] + 1e-3 and 0 <= y <= y + h <= image["height"] + 1e-3
        assert d["category"] == CLASSES[d["category_id"] - 1]
    bad = folder / "broken.png"
    bad.write_text("junk")
    broken = runner.invoke(cli, ["predict", str(bad), "--output", str(out), "--root", str(root), "--profile", "quick"])
    assert broken.exit_code == 2 and "broken.png" in broken.output and "Traceback" not in broken.output
    nothing = runner.invoke(
        cli, ["predict", str(tmp_path / "missing.png"), "--output", str(out), "--root", str(root), "--profile", "quick"]
    )
    assert nothing.exit_code == 2 and "missing.png" in nothing.output


def test_confusions_name_what_each_shape_was_called():
    from bongard_detector.generate import categories
    from bongard_detector.metrics import confusions

    truth = {"images": [{"id": 1}], "categories": categories(), "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10]},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [100, 100, 10, 10]}]}  # fmt: skip
    found = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
             {"image_id": 1, "category_id": 3, "bbox": [50, 50, 10, 10], "score": 0.8},
             {"image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10], "score": 0.4},
             {"image_id": 1, "category_id": 3, "bbox": [100, 100, 10, 10], "score": 0.01}]  # fmt: skip
    result = confusions(truth, found)
    assert result["matrix"] == {"triangle": {"triangle": 1}, "quadrangle": {"pentagon": 1}, "pentagon": {"missed": 1}}
    assert result["accuracy"] == pytest.approx(1 / 3, abs=1e-3) and result["top"][0][:2] in (
        ["quadrangle", "pentagon"],
        ["pentagon", "missed"],
    )
    assert "shapes" not in result  # annotations from elsewhere do not say which figure drew them


def test_confusions_per_figure_worst_named_first():
    from bongard_detector.generate import categories
    from bongard_detector.metrics import confusions

    def box(i):
        return [20 * i, 0, 10, 10]

    # figure "kite" (quadrangle) drawn 3 times, named right once; "fan" (sector) twice, both right;
    # "lamp" (enneagon) once, called hexagon
    drawn = [("kite", 2), ("kite", 2), ("kite", 2), ("fan", 8), ("fan", 8), ("lamp", 7)]
    called = [2, 1, 3, 8, 8, 4]
    truth = {"images": [{"id": 1}], "categories": categories(), "annotations": [
        {"id": i + 1, "image_id": 1, "category_id": c, "bbox": box(i), "shape": name} for i, (name, c) in enumerate(drawn)]}  # fmt: skip
    found = [{"image_id": 1, "category_id": c, "bbox": box(i), "score": 0.9} for i, c in enumerate(called)]
    shapes = confusions(truth, found)["shapes"]
    assert list(shapes) == ["lamp", "kite", "fan"]
    assert shapes["lamp"] == {"class": "enneagon", "count": 1, "right": 0, "called": {"hexagon": 1}}
    assert shapes["kite"]["right"] == 1 and shapes["kite"]["count"] == 3 and shapes["kite"]["called"] == {
        "quadrangle": 1, "triangle": 1, "pentagon": 1}  # fmt: skip
    assert shapes["fan"] == {"class": "sector", "count": 2, "right": 2, "called": {"sector": 2}}
