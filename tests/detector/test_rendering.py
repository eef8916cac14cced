"""Programs, rendering and exact boxes: what the detector's annotations rest on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bongard_detector.programs import CLASSES, ProgramError, human_designed_shapes, parse_program, read_programs, trace
from bongard_detector.render import STYLES, place, rasterise


def ink_box(image) -> tuple[float, float, float, float]:
    """The rendered ink's bounding box to sub-pixel precision (partial coverage of the edge pixels)."""
    cover = 1 - np.asarray(image, dtype=float) / 255
    cols, rows = cover.max(0), cover.max(1)
    xs, ys = np.flatnonzero(cols > 0.02), np.flatnonzero(rows > 0.02)
    return (xs[0] + 1 - cols[xs[0]], ys[0] + 1 - rows[ys[0]], xs[-1] + cols[xs[-1]], ys[-1] + rows[ys[-1]])


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_a_known_program_gives_the_expected_box():
    square = parse_program("square", "quadrangle", "line_1.0, line_1.0, line_1.0, line_1.0", "L0--L90--L90--L90")
    shape = place(trace(square), ["normal"] * 4, size=100, angle=0.0, centre=(200.0, 200.0), width=2.0)
    assert shape.box == pytest.approx((149.0, 149.0, 251.0, 251.0))  # 100 px square, padded by half the 2 px stroke
    image = rasterise([shape], 416)
    pixels = np.asarray(image)
    assert pixels[150, 200] < 60 and pixels[200, 200] == 255 and pixels[147, 200] == 255  # ink on the edge, none inside/outside
    assert iou(ink_box(image), shape.box) > 0.98


def test_turtle_semantics():
    left = trace(parse_program("a", "arc", "arc_1_90", "L0"))[0]
    right = trace(parse_program("a", "arc", "arc_1_-90", "L0"))[0]
    assert left[-1] == pytest.approx([1.0, 1.0]) and right[-1] == pytest.approx([1.0, -1.0])  # centre on the left when positive
    triangle = trace(parse_program("t", "triangle", "line_1, line_1, line_1", "L0--L120--L120"))
    assert triangle[-1][-1] == pytest.approx([0.0, 0.0], abs=1e-9)  # closes
    sector = trace(parse_program("s", "sector", "line_0.5, arc_0.5_78, line_0.5", "L0--L90--L90"))
    assert sector[-1][-1] == pytest.approx([0.0, 0.0], abs=1e-9)  # two radii and the arc between them


def test_the_shipped_human_designed_shapes_parse():
    programs = read_programs(human_designed_shapes())
    assert len(programs) == 420
    assert {p.super_class for p in programs} == set(CLASSES)  # hexagon* and the like map to their class
    assert sum(p.super_class == "hexagon" for p in programs) == 62  # 23 hexagon + 39 hexagon*


def test_bad_programs_are_named(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text(
        "shape function name\tshape name\tsuper class\tset of base actions\tturn angles\n"
        "ok\tok\ttriangle\tline_1, line_1, line_1\tL0--L120--L120\n"
        "broken\tbroken\ttriangle\tline_1, curve_2\tL0--L120\n"
    )
    with pytest.raises(ProgramError, match=r"bad.tsv:3: action 'curve_2'"):
        read_programs(bad)
    with pytest.raises(ProgramError, match="one turn per action"):
        parse_program("x", "triangle", "line_1, line_1", "L0")
    with pytest.raises(ProgramError, match="super class 'blob'"):
        parse_program("x", "blob", "line_1", "L0")
    (tmp_path / "nohead.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ProgramError, match="missing column"):
        read_programs(tmp_path / "nohead.tsv")


@pytest.mark.parametrize("style", STYLES)
def test_boxes_match_the_ink_in_every_style(style):
    rng = np.random.default_rng(STYLES.index(style))
    programs = read_programs(human_designed_shapes())
    worst = 1.0
    for index in rng.choice(len(programs), 25, replace=False):
        strokes = trace(programs[index])
        shape = place(strokes, [style] * len(strokes), rng.uniform(30, 200), rng.uniform(0, 2 * math.pi),
                      (rng.uniform(150, 250), rng.uniform(150, 250)), rng.uniform(1.5, 3.5))  # fmt: skip
        worst = min(worst, iou(ink_box(rasterise([shape], 416)), shape.box))
    assert worst >= 0.95


def test_generation_is_deterministic_whatever_the_workers(tmp_path):
    from bongard_detector.generate import GenerationConfig, generate

    config = GenerationConfig(count=20, image_size=160, seed=7)
    one = generate(config, tmp_path / "one", workers=1, progress=False)
    two = generate(config, tmp_path / "two", workers=2, progress=False)
    assert one == two and len(one["images"]) == 20 and one["annotations"]
    for i in range(20):
        assert (tmp_path / "one/images" / f"{i:06d}.png").read_bytes() == (tmp_path / "two/images" / f"{i:06d}.png").read_bytes()
    other = generate(GenerationConfig(count=20, image_size=160, seed=8), tmp_path / "three", workers=1, progress=False)
    assert other["annotations"] != one["annotations"]
    boxes = np.array([a["bbox"] for a in one["annotations"]])
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 160).all() and (boxes[:, 1] + boxes[:, 3] <= 160).all()
    assert {a["category_id"] for a in one["annotations"]} <= set(range(1, 11))


def test_generate_command_reads_programs_and_reports_bad_files(tmp_path):
    import json

    from click.testing import CliRunner

    from bongard_detector.cli import cli

    out = tmp_path / "real"
    result = CliRunner().invoke(cli, ["generate", "--output", str(out), "--count", "6", "--image-size", "128", "--workers", "1",
                                      "--programs", str(human_designed_shapes()), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["images"] == 6
    coco = json.loads((out / "annotations.json").read_text())
    assert len(coco["images"]) == 6
    # each shape names the program that drew it, of the class it is annotated with
    classes = {p.name: p.super_class for p in read_programs(human_designed_shapes())}
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert coco["annotations"] and all(classes[a["shape"]] == names[a["category_id"]] for a in coco["annotations"])
    missing = CliRunner().invoke(cli, ["generate", "--output", str(tmp_path / "x"), "--programs", str(tmp_path / "none.tsv")])
    assert missing.exit_code == 2 and "no such file" in missing.output and "Traceback" not in missing.output


@pytest.mark.parametrize(
    ("actions", "turns", "expected"),
    [
        ("line_1.0, line_1.0, line_1.0, line_1.0", "L0--L90--L90--L90", (4, 0, 4)),  # closed: the last end is the first start
        ("line_1.0, line_1.0, line_1.0", "L0--L90--L90", (3, 0, 4)),  # open: one more end than corners
        ("line_0.5, arc_0.5_90.0, line_0.5", "L0--L90--L90", (2, 1, 3)),  # a sector
    ],
)
def test_each_shape_records_where_its_lines_arcs_and_vertices_are(actions, turns, expected):
    from bongard_detector.generate import stroke_points

    program = parse_program("p", "sector", actions, turns)
    placed = place(trace(program), ["zigzag"] * len(program.actions), 80.0, 0.3, (50.0, 50.0), 2.0)
    points = stroke_points(placed.strokes, [a.kind for a in program.actions])
    assert (len(points["lines"]), len(points["arcs"]), len(points["vertices"])) == expected
    x0, y0, x1, y1 = placed.box
    for x, y in points["lines"] + points["arcs"] + points["vertices"]:
        assert x0 <= x <= x1 and y0 <= y <= y1
    if expected == (4, 0, 4):  # a line's recorded middle halfway between its two vertices
        a, b = placed.strokes[1][0], placed.strokes[1][-1]
        assert np.allclose(points["lines"][1], (a + b) / 2, atol=0.01)
