"""Composing images of shapes with COCO-format annotations (`detector generate`).

Each image holds ``min_shapes``..``max_shapes`` shapes, each drawn from a program (a synthetic
family, the rows of a Bongard-LOGO TSV, or a mix of both with ``program_share``, the TSV's programs
optionally perturbed by :func:`bongard_detector.shapes.perturb`), every stroke in a random one of the
five styles, at a random size, rotation and position, without overlapping boxes. Image ``i`` is
drawn from its own random stream ``(seed, i)``, so a dataset is the same whatever the number of
worker processes or the chunking. Output::

    <out>/images/000000.png ...
    <out>/annotations.json      # COCO: images, annotations (bbox x, y, w, h in pixels), categories

Each annotation also records ``shape``, the name of the program drawn (``synthetic_<class>`` for a
family's; :func:`bongard_detector.metrics.confusions` reports how each named shape was called), and
``lines``, ``arcs``, ``vertices`` (:func:`stroke_points`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bongard_detector.programs import CLASSES, ShapeProgram, read_programs, trace
from bongard_detector.render import STYLES, Placed, place, rasterise


@dataclass(frozen=True)
class GenerationConfig:
    count: int = 1000
    image_size: int = 416
    min_shapes: int = 1
    max_shapes: int = 4
    min_size: float = 0.15  # shape size (larger side) as a fraction of the image
    max_size: float = 0.45
    min_width: float = 1.5  # stroke width in pixels at 416; scaled with the image, at least 1 pixel
    max_width: float = 3.5
    seed: int = 0
    programs: str | None = None  # a TSV of programs (the real set); None = synthetic families
    program_share: float = 1.0  # with programs: the share of shapes drawn from them, the rest from the families
    perturb: float = 0.0  # with programs: program-level jitter (shapes.perturb), 0 = the programs as written


def categories() -> list[dict]:
    return [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]


def _overlaps(box, boxes, margin: float) -> bool:
    return any(box[0] < b[2] + margin and b[0] < box[2] + margin and box[1] < b[3] + margin and b[1] < box[3] + margin for b in boxes)


def compose(index: int, config: GenerationConfig, programs: list[ShapeProgram] | None):
    """(PIL image, [(category, box)]) of image ``index``: deterministic from (seed, index)."""
    from bongard_detector.families import random_program
    from bongard_detector.shapes import perturb

    rng = np.random.default_rng([config.seed, index])
    s = config.image_size
    wanted = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    placed: list[Placed] = []
    drawn: list[ShapeProgram] = []  # the program of each placed shape
    for _ in range(wanted):
        if programs and (config.program_share >= 1 or rng.random() < config.program_share):
            program = programs[int(rng.integers(len(programs)))]
            if config.perturb > 0:
                program = perturb(program, rng, config.perturb)
        else:
            program = random_program(rng)
        strokes = trace(program)
        styles = [STYLES[int(rng.integers(len(STYLES)))] for _ in strokes]
        width = max(1.0, float(rng.uniform(config.min_width, config.max_width)) * s / 416)
        for _attempt in range(8):  # a size and rotation (styling is the costly part) ...
            size = float(rng.uniform(config.min_size, config.max_size)) * s
            angle = float(rng.uniform(0, 2 * math.pi))
            probe = place(strokes, styles, size, angle, (0.0, 0.0), width)
            w, h = probe.box[2] - probe.box[0], probe.box[3] - probe.box[1]
            if w > s - 4 or h > s - 4:
                continue
            shifted, taken = None, [p.box for p in placed]
            for _position in range(12):  # ... then positions until it overlaps nothing
                x = float(rng.uniform(2 - probe.box[0], s - 2 - probe.box[2]))
                y = float(rng.uniform(2 - probe.box[1], s - 2 - probe.box[3]))
                box = (probe.box[0] + x, probe.box[1] + y, probe.box[2] + x, probe.box[3] + y)
                if not _overlaps(box, taken, margin=4.0):
                    shifted = probe.moved((x, y))
                    break
            if shifted is not None:
                placed.append(shifted)
                drawn.append(program)
                break
    objects = [(program.super_class, p.box, {"shape": program.name, **stroke_points(p.strokes, [a.kind for a in program.actions])})
               for program, p in zip(drawn, placed, strict=True)]  # fmt: skip
    return rasterise(placed, s), objects


def stroke_points(strokes: list[np.ndarray], kinds: list[str]) -> dict[str, list[list[float]]]:
    """Where a shape's parts are, in pixels: the middle (by length) of each line and of each arc,
    and its vertices (the ends of its strokes, ends closer than a pixel counted once). What the
    shape classifier learns to count (``shape_classifier``)."""
    out: dict[str, list[list[float]]] = {"lines": [], "arcs": [], "vertices": []}
    for stroke, kind in zip(strokes, kinds, strict=True):
        seg = np.hypot(*np.diff(stroke, axis=0).T)
        half, cum = seg.sum() / 2, np.concatenate([[0.0], np.cumsum(seg)])
        i = int(np.clip(np.searchsorted(cum, half, side="right") - 1, 0, len(seg) - 1))
        middle = stroke[i] + (stroke[i + 1] - stroke[i]) * ((half - cum[i]) / max(seg[i], 1e-12))
        out["lines" if kind == "line" else "arcs"].append([round(float(v), 2) for v in middle])
        for end in (stroke[0], stroke[-1]):
            if all(math.hypot(end[0] - v[0], end[1] - v[1]) >= 1.0 for v in out["vertices"]):
                out["vertices"].append([round(float(v), 2) for v in end])
    return out


def _chunk(args) -> list[tuple[int, list]]:
    start, stop, config, out = args
    programs = read_programs(config.programs) if config.programs else None
    done = []
    for i in range(start, stop):
        image, objects = compose(i, config, programs)
        image.save(Path(out) / "images" / f"{i:06d}.png", compress_level=1)
        done.append((i, objects))
    return done


def generate(config: GenerationConfig, out: str | os.PathLike, workers: int | None = None, progress: bool = True) -> dict:
    """Write the images and ``annotations.json`` (written last, atomically: its presence means
    the set is complete). Returns the COCO dictionary."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from tqdm import tqdm

    from trainer_core import atomic_write_json

    if config.programs:
        read_programs(config.programs)  # fail early, in one line, on a bad TSV
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    step = 16
    jobs = [(a, min(a + step, config.count), config, str(out)) for a in range(0, config.count, step)]
    results: list[tuple[int, list]] = []
    bar = tqdm(total=config.count, unit="img", desc=f"generating {out.name}", disable=not progress)
    if workers == 1:
        for job in jobs:
            results += _chunk(job)
            bar.update(job[1] - job[0])
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            for job, done in zip(jobs, pool.map(_chunk, jobs), strict=True):
                results += done
                bar.update(job[1] - job[0])
    bar.close()
    coco = to_coco(sorted(results), config)
    atomic_write_json(out / "annotations.json", coco)
    return coco


def to_coco(results: list[tuple[int, list]], config: GenerationConfig) -> dict:
    images, annotations = [], []
    for i, objects in results:
        images.append({"id": i + 1, "file_name": f"images/{i:06d}.png", "width": config.image_size, "height": config.image_size})
        for label, (x0, y0, x1, y1), drawn in objects:
            w, h = x1 - x0, y1 - y0
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": CLASSES.index(label) + 1,
                "bbox": [round(x0, 3), round(y0, 3), round(w, 3), round(h, 3)], "area": round(w * h, 3), "iscrowd": 0,
                **drawn,
            })  # fmt: skip
    return {"info": {"generator": "bongard-detector", "config": asdict(config)}, "images": images, "annotations": annotations,
            "categories": categories()}  # fmt: skip
