"""Synthetic families: the class a shape is labelled with can be read off its drawing."""

from __future__ import annotations

import numpy as np
import pytest

from bongard_detector.families import MIN_TURN, _legible, _polygon_vertices, _segments_cross, open_chain, random_program
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


def test_open_chains_do_not_cross_themselves():
    rng = np.random.default_rng(0)
    crossing = np.array([[0, 0], [1, 0], [1, 1], [0.5, -0.5]], dtype=float)
    assert _segments_cross(crossing, crossing)
    for n in (3, 4, 5):
        for _ in range(30):
            actions = open_chain(rng, n)
            assert len(actions) == n
            assert all(abs(a.turn) >= MIN_TURN for a in actions[1:])


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
            assert kinds == ["line"] * (CLASSES.index(cls) + 3)
