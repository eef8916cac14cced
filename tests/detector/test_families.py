"""Synthetic families: the class a shape is labelled with can be read off its drawing."""

from __future__ import annotations

import numpy as np
import pytest

from bongard_detector.families import MIN_TURN, _legible, _polygon_vertices, _segments_cross, open_polygon, random_program
from bongard_detector.programs import CLASSES


@pytest.mark.parametrize("n", range(3, 10))
def test_polygons_have_n_visible_vertices(n):
    rng = np.random.default_rng(n)
    for _ in range(40):
        vertices = _polygon_vertices(rng, n)
        assert len(vertices) == n and _legible(vertices, closed=True)


def test_a_nearly_straight_vertex_is_not_legible():
    hexagon = np.array([[np.cos(a), np.sin(a)] for a in np.arange(6) * np.pi / 3])
    assert _legible(hexagon, closed=True)
    flattened = hexagon.copy()
    flattened[1] = (hexagon[0] + hexagon[2]) / 2 + 0.02  # vertex 1 almost on the line 0-2
    assert not _legible(flattened, closed=True)


def test_an_open_polygon_is_an_n_gon_missing_one_side():
    rng = np.random.default_rng(0)
    crossing = np.array([[0, 0], [1, 0], [1, 1], [0.5, -0.5]], dtype=float)
    assert _segments_cross(crossing, crossing)
    for n in (3, 4, 5, 6):
        for _ in range(30):
            actions = open_polygon(rng, n)
            assert len(actions) == n - 1 and all(a.kind == "line" for a in actions)
            assert all(abs(a.turn) >= MIN_TURN for a in actions[1:])
            points = np.concatenate([[[0.0, 0.0]], np.cumsum([[a.length * np.cos(h), a.length * np.sin(h)] for a, h in
                                     zip(actions, np.radians(np.cumsum([a.turn for a in actions])), strict=True)], 0)])  # fmt: skip
            assert not _segments_cross(points, points)
            gap = np.hypot(*(points[-1] - points[0]))  # the left-out side: as long as the others, give or take
            assert 0.3 * min(a.length for a in actions) < gap < 3 * max(a.length for a in actions)


@pytest.mark.parametrize("cls", CLASSES)
def test_line_classes_count_their_lines_and_curved_classes_have_arcs(cls):
    rng = np.random.default_rng(CLASSES.index(cls))
    for _ in range(30):
        program = random_program(rng, cls)
        kinds = [a.kind for a in program.actions]
        assert program.super_class == cls
        if cls in ("sector", "quasi_sector", "arc"):
            assert "arc" in kinds
            assert cls != "arc" or set(kinds) == {"arc"}
        else:
            n = CLASSES.index(cls) + 3
            assert kinds in (["line"] * n, ["line"] * (n - 1)) and (len(kinds) == n or n <= 6)  # an open n-gon: n - 1 lines
