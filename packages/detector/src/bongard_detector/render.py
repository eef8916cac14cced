"""Drawing traced programs: Bongard-LOGO's five stroke styles, placement, rasterisation, exact boxes.

Each stroke is drawn black on white in one of five styles:

* ``normal``: the path itself;
* ``zigzag``: the path replaced by a zigzag of small amplitude across it;
* ``circle`` / ``square`` / ``triangle``: a chain of small circles, squares or triangles along the
  path, oriented along it.

Every styled stroke is a set of polylines in pixels drawn with width ``w`` and round joints and
caps, so the ink is exactly the polylines thickened by a disk of radius ``w / 2``: the box of a
shape is the extreme of its polyline points padded by ``w / 2``. That box is exact to sub-pixel
precision (tests check IoU >= 0.95 with the rendered ink's bounding box even for thin shapes), which
AP@0.5:0.95 on thin strokes needs. Rasterisation supersamples 2x and averages down (anti-aliased).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STYLES = ("normal", "zigzag", "circle", "square", "triangle")
SUPERSAMPLE = 2


@dataclass
class Placed:
    """One shape on the canvas: its styled polylines (pixels), stroke width and box (x0, y0, x1, y1),
    and its strokes before styling (pixels, one polyline per action: where its lines, arcs and
    vertices are)."""

    polylines: list[np.ndarray]
    width: float
    box: tuple[float, float, float, float]
    strokes: list[np.ndarray] | None = None

    def moved(self, offset: tuple[float, float]) -> Placed:
        box = (self.box[0] + offset[0], self.box[1] + offset[1], self.box[2] + offset[0], self.box[3] + offset[1])
        strokes = [s + offset for s in self.strokes] if self.strokes is not None else None
        return Placed([p + offset for p in self.polylines], self.width, box, strokes)


def _resample(points: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """(points every ``spacing`` pixels along the polyline, unit tangents there)."""
    seg = np.diff(points, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    total = lengths.sum()
    if total < 1e-9:
        return points[:1], np.array([[1.0, 0.0]])
    count = max(2, int(round(total / spacing)) + 1)
    at = np.linspace(0.0, total, count)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    idx = np.clip(np.searchsorted(cum, at, side="right") - 1, 0, len(seg) - 1)
    frac = (at - cum[idx]) / np.maximum(lengths[idx], 1e-12)
    out = points[idx] + seg[idx] * frac[:, None]
    tangent = seg[idx] / np.maximum(lengths[idx], 1e-12)[:, None]
    return out, tangent


def _mark(kind: str, centre: np.ndarray, tangent: np.ndarray, size: float) -> np.ndarray:
    """A small closed polyline (circle, square or triangle) of ``size`` across, oriented along ``tangent``."""
    if kind == "circle":
        t = np.linspace(0, 2 * math.pi, 13)
        local = np.stack([np.cos(t), np.sin(t)], 1) * size / 2
    elif kind == "square":
        local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float) * size / 2
    else:
        local = np.array([[1, 0], [-0.5, 0.866], [-0.5, -0.866], [1, 0]], dtype=float) * size / 2
    c, s = tangent
    rotation = np.array([[c, -s], [s, c]])
    return centre + local @ rotation.T


def style_stroke(points: np.ndarray, style: str, scale: float) -> list[np.ndarray]:
    """The polylines that draw one stroke (pixels) in ``style``; ``scale`` sets the pattern size."""
    if style == "normal":
        return [points]
    period = max(4.0, 0.06 * scale)
    if style == "zigzag":
        at, tangent = _resample(points, period / 2)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
        sign = np.where(np.arange(len(at)) % 2 == 0, 0.0, 1.0) * np.where(np.arange(len(at)) % 4 == 1, 1.0, -1.0)
        return [at + normal * sign[:, None] * period * 0.35]
    at, tangent = _resample(points, period)
    return [_mark(style, p, t, period * 0.8) for p, t in zip(at, tangent, strict=True)]


def place(strokes: list[np.ndarray], styles: list[str], size: float, angle: float, centre: tuple[float, float], width: float) -> Placed:
    """Scale the traced strokes so the shape's larger side is ``size`` pixels, rotate by ``angle``
    (radians) about its centre, move the centre to ``centre`` and style each stroke."""
    allpoints = np.concatenate(strokes)
    lo, hi = allpoints.min(0), allpoints.max(0)
    extent = max(float((hi - lo).max()), 1e-6)
    mid = (lo + hi) / 2
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s], [s, c]]) * (size / extent)
    # image y grows downwards: flip y so that a left turn looks like one
    flip = np.array([1.0, -1.0])
    width = max(1, round(width * SUPERSAMPLE)) / SUPERSAMPLE  # what the rasteriser can draw exactly
    polylines, plain = [], []
    for stroke, style in zip(strokes, styles, strict=True):
        pixels = ((stroke - mid) * flip) @ rotation.T + np.asarray(centre)
        plain.append(pixels)
        polylines += style_stroke(pixels, style, size)
    return Placed(polylines, width, ink_box(polylines, width), plain)


def ink_box(polylines: list[np.ndarray], width: float) -> tuple[float, float, float, float]:
    """Exact extent of polylines drawn ``width`` wide with round joints and caps."""
    points = np.concatenate(polylines)
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    r = width / 2
    return (float(x0 - r), float(y0 - r), float(x1 + r), float(y1 + r))


def rasterise(shapes: list[Placed], image_size: int):
    """An 'L' (greyscale) PIL image, black strokes on white, anti-aliased."""
    from PIL import Image, ImageDraw

    k = SUPERSAMPLE
    canvas = Image.new("L", (image_size * k, image_size * k), 255)
    draw = ImageDraw.Draw(canvas)
    for shape in shapes:
        w = shape.width * k
        for line in shape.polylines:
            # PIL addresses the supersampled canvas in the same corner-based coordinates (measured: mean box error < 0.1 px)
            pts = line * k + 0.0
            flat = [tuple(p) for p in pts]
            if len(flat) >= 2:
                draw.line(flat, fill=0, width=int(round(w)), joint="curve")
            for p in (pts[0], pts[-1]) if len(pts) else ():
                draw.ellipse([p[0] - w / 2, p[1] - w / 2, p[0] + w / 2, p[1] + w / 2], fill=0)
    return canvas.reduce(k)
