"""Parametric shape families for synthetic training data, written as action programs.

The families never copy a human-designed shape; they its own programs from these families, in the same ``line_``/``arc_`` format, so that both go
through the same renderer. The super class follows Bongard-LOGO's convention:

* triangle ... enneagon: shapes made of 3 ... 9 straight lines: a convex or star-shaped simple
  polygon, two polygons sharing a vertex (a triangle and a square make a heptagon*), or an open
  polygon, one side left out (n - 1 lines named after the n-gon, as Bongard-LOGO names them);
* sector: two radii and the arc between them (optionally with extra straight lines attached);
* quasi_sector: lines and arcs whose arc radius does not close a sector (open fans, bands, arcs
  between lines of other lengths);
* arc: arcs only (one to six arcs with turns between them).
"""

from __future__ import annotations

import math

import numpy as np

from bongard_detector.programs import CLASSES, Action, ShapeProgram

LINE_CLASSES = {n: CLASSES[n - 3] for n in range(3, 10)}


def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0


def _sides(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, headings in degrees) of the segments of a polyline."""
    seg = np.diff(points, axis=0)
    return np.hypot(seg[:, 0], seg[:, 1]), np.degrees(np.arctan2(seg[:, 1], seg[:, 0]))


def _polyline_actions(vertices: np.ndarray, closed: bool, first_turn: float | None = None) -> list[Action]:
    lengths, headings = _sides(np.concatenate([vertices, vertices[:1]]) if closed else vertices)
    actions, previous = [], 0.0
    for i, (length, heading) in enumerate(zip(lengths, headings, strict=True)):
        turn = heading - previous if i or first_turn is None else first_turn
        actions.append(Action("line", length=round(float(length), 3), turn=round(_wrap(float(turn)), 2)))
        previous = heading
    return actions


MIN_TURN = 25.0  # degrees: a vertex must turn at least this much to be seen as one
MIN_SIDE = 0.4  # a side is at least this fraction of the mean side


def _legible(vertices: np.ndarray, closed: bool) -> bool:
    """Every vertex visibly turns and no side is tiny: the line count can be read off the image."""
    lengths, headings = _sides(np.concatenate([vertices, vertices[:1]]) if closed else vertices)
    if closed:  # the turn at vertex 0, from the closing side into the first
        headings = np.concatenate([headings[-1:], headings])
    turns = (np.diff(headings) + 180.0) % 360.0 - 180.0
    return bool(np.abs(turns).min() >= MIN_TURN and lengths.min() >= MIN_SIDE * lengths.mean())


def _segments_cross(p: np.ndarray, q: np.ndarray) -> bool:
    """Whether two polylines' segments properly intersect (shared end points excluded; a
    polyline against itself skips neighbouring segments, which meet at a vertex)."""

    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    for i in range(len(p) - 1):
        for j in range(len(q) - 1):
            if p is q and abs(i - j) <= 1:
                continue
            a, b, c, d = p[i], p[i + 1], q[j], q[j + 1]
            if orient(a, b, c) * orient(a, b, d) < 0 and orient(c, d, a) * orient(c, d, b) < 0:
                return True
    return False


def _polygon_vertices(rng: np.random.Generator, n: int) -> np.ndarray:
    """A legible simple polygon: convex, or star-shaped (radii down to 0.5), every vertex turning
    by at least ``MIN_TURN`` and no side shorter than ``MIN_SIDE`` of the mean (redrawn until so)."""
    while True:
        if rng.random() < 0.3:  # regular-looking
            base = np.arange(n) * 2 * np.pi / n + rng.uniform(0, 2 * np.pi)
            radii = np.ones(n)
        else:
            base = np.arange(n) * 2 * np.pi / n + rng.uniform(-0.35, 0.35, n) * (2 * np.pi / n) + rng.uniform(0, 2 * np.pi)
            concave = n >= 4 and rng.random() < 0.3
            radii = rng.uniform(0.5, 1.0, n) if concave else rng.uniform(0.8, 1.0, n)
        vertices = np.stack([radii * np.cos(base), radii * np.sin(base)], 1)
        if _legible(vertices, closed=True):
            return vertices


def _normalised(actions: list[Action]) -> list[Action]:
    """Scale lengths and radii so that the longest is 1 (as the TSV programs are)."""
    top = max(max(a.length for a in actions), max(a.radius for a in actions)) or 1.0
    return [Action(a.kind, round(a.length / top, 3), round(a.radius / top, 3), a.angle, a.turn) for a in actions]


def open_polygon(rng: np.random.Generator, n: int) -> list[Action]:
    """An n-gon with one side left out: n - 1 straight lines, named after the polygon they outline,
    as Bongard-LOGO's human-designed shapes name them (two sides of a triangle are an open triangle:
    ``triangle``; three sides of a square: ``quadrangle``; five sides of a hexagon: ``hexagon``)."""
    vertices = _polygon_vertices(rng, n)
    return _polyline_actions(np.roll(vertices, -int(rng.integers(n)), axis=0), closed=False)


def lines_shape(rng: np.random.Generator, n: int) -> list[Action]:
    """A shape of the n-line class: mostly an n-gon; an open n-gon of n - 1 lines (n <= 6); two
    polygons sharing a vertex, side by side (n >= 6: a triangle and a square make a heptagon*)."""
    if n <= 6 and rng.random() < 0.2:
        return open_polygon(rng, n)
    if n >= 6 and rng.random() < 0.3:
        a = int(rng.integers(3, n - 2))
        while True:
            first = _polygon_vertices(rng, a)
            second = _polygon_vertices(rng, n - a) * rng.uniform(0.6, 1.0)
            # the second polygon hangs off the first's vertex 0, pointing away from the first
            outward = math.atan2(first[0, 1], first[0, 0]) + rng.uniform(-0.5, 0.5)
            inward = math.atan2(-second[0, 1], -second[0, 0])
            c, s = math.cos(outward - inward), math.sin(outward - inward)
            second = (second - second[0]) @ np.array([[c, -s], [s, c]]).T + first[0]
            ring1, ring2 = np.concatenate([first, first[:1]]), np.concatenate([second, second[:1]])
            if not _segments_cross(ring1, ring2):  # touching at the shared vertex only
                return _polyline_actions(first, True) + _joined(first, second)
    return _polyline_actions(_polygon_vertices(rng, n), True)


def _joined(first: np.ndarray, second: np.ndarray) -> list[Action]:
    """Actions that continue from the first polygon's closing vertex around the second polygon."""
    closing_heading = math.degrees(math.atan2(first[0, 1] - first[-1, 1], first[0, 0] - first[-1, 0]))
    actions = _polyline_actions(second, True, first_turn=0.0)
    seg = second[1] - second[0]
    heading = math.degrees(math.atan2(seg[1], seg[0]))
    first_action = actions[0]
    actions[0] = Action("line", first_action.length, 0.0, 0.0, round(_wrap(heading - closing_heading), 2))
    return actions


def sector(rng: np.random.Generator) -> list[Action]:
    r = 0.5
    angle = float(rng.uniform(30, 330))
    actions = [Action("line", length=r), Action("arc", radius=r, angle=round(angle, 1), turn=90.0), Action("line", length=r, turn=90.0)]
    if rng.random() < 0.3:  # a sector with straight lines attached (Bongard-LOGO's sector*)
        for _ in range(int(rng.integers(1, 4))):
            actions.append(Action("line", length=round(float(rng.uniform(0.2, 0.6)), 3), turn=round(float(rng.uniform(-150, 150)), 1)))
    return actions


def quasi_sector(rng: np.random.Generator) -> list[Action]:
    kind = rng.integers(3)
    if kind == 0:  # line, arc, line with lengths that do not match the radius (no sector)
        r = float(rng.uniform(0.3, 0.6))
        return [
            Action("line", length=round(r * float(rng.uniform(0.3, 0.7)), 3)),
            Action("arc", radius=round(r, 3), angle=round(float(rng.uniform(60, 200)), 1), turn=round(float(rng.uniform(-100, 100)), 1)),
            Action("line", length=round(float(rng.uniform(0.2, 0.8)), 3), turn=round(float(rng.uniform(-120, 120)), 1)),
        ]
    if kind == 1:  # a band: lines and arcs alternating
        actions = []
        for _ in range(int(rng.integers(2, 5))):
            actions.append(Action("line", length=round(float(rng.uniform(0.2, 0.5)), 3)))
            actions.append(Action("arc", radius=0.5, angle=round(float(rng.uniform(40, 100)), 1), turn=0.0))
        return actions
    # an open line-arc
    return [
        Action("line", length=round(float(rng.uniform(0.3, 1.0)), 3)),
        Action(
            "arc", radius=0.5, angle=round(float(rng.choice([-1, 1]) * rng.uniform(45, 180)), 1), turn=round(float(rng.uniform(-30, 30)), 1)
        ),
    ]


def arcs(rng: np.random.Generator) -> list[Action]:
    actions = []
    for i in range(int(rng.integers(1, 7))):
        angle = float(rng.choice([-1, 1]) * rng.uniform(70, 220))  # flatter arcs read as lines
        turn = 0.0 if i == 0 else float(rng.uniform(-180, 180))
        actions.append(Action("arc", radius=0.5, angle=round(angle, 1), turn=round(turn, 1)))
    return actions


def random_program(rng: np.random.Generator, super_class: str | None = None) -> ShapeProgram:
    """One synthetic program of ``super_class`` (uniform over the ten classes when None)."""
    cls = super_class or CLASSES[int(rng.integers(len(CLASSES)))]
    if cls in LINE_CLASSES.values():
        n = CLASSES.index(cls) + 3
        actions = lines_shape(rng, n)
    elif cls == "sector":
        actions = sector(rng)
    elif cls == "quasi_sector":
        actions = quasi_sector(rng)
    else:
        actions = arcs(rng)
    return ShapeProgram(f"synthetic_{cls}", cls, tuple(_normalised(actions)))
