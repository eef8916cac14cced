"""The human-designed Bongard-LOGO shapes as training data: a shape-level split and perturbations.

* :func:`shape_split`: the shipped programs split **by shape** (never by image) into train and
  held-out shapes, deterministically: within each super class, shapes are ordered by the SHA-256 of
  their shape function name and the first ``held_out_fraction`` of them (at least one) are held out.
  The held-out shapes are never rendered into training data; the real figures are measured on them.
  A hash rather than a list: a shape added to the TSV lands on one side without moving the others.
  ``seed`` 0 is that split (the name's hash); another seed hashes ``"<seed>/<name>"`` instead, which
  draws another split of the same sizes per class, so a figure can be reported over several splits.
* :func:`perturb`: a program-level variation that keeps the super class. Every distinct line length
  or arc radius is scaled by one factor (so equal lengths stay equal: a sector's radii still equal its
  arc's radius), every distinct arc angle and turn by one factor within a fifth of that (a zero turn stays zero,
  so collinear lines stay one line; the signs never change), and the number and kind of actions
  never change: a shape of n straight lines keeps n, a sector stays a sector.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from bongard_detector.programs import CLASSES, Action, ShapeProgram

HELD_OUT_FRACTION = 0.2


def _rank(name: str, seed: int = 0) -> str:
    return hashlib.sha256((f"{seed}/{name}" if seed else name).encode()).hexdigest()


@dataclass(frozen=True)
class ShapeSplit:
    train: tuple[ShapeProgram, ...]
    held_out: tuple[ShapeProgram, ...]

    def counts(self) -> dict[str, dict[str, int]]:
        """Shapes per super class on each side (and the totals)."""
        out: dict[str, dict[str, int]] = {}
        for side in ("train", "held_out"):
            programs = getattr(self, side)
            out[side] = {cls: sum(p.super_class == cls for p in programs) for cls in CLASSES}
            out[side]["total"] = len(programs)
        return out


def shape_split(programs: list[ShapeProgram], held_out_fraction: float = HELD_OUT_FRACTION, seed: int = 0) -> ShapeSplit:
    """Train and held-out shapes, stratified by super class; ``seed`` picks the split (see the module's docstring)."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction {held_out_fraction}: expected a fraction strictly between 0 and 1")
    by_class: dict[str, list[ShapeProgram]] = defaultdict(list)
    for program in programs:
        by_class[program.super_class].append(program)
    held: set[str] = set()
    for members in by_class.values():
        ordered = sorted(members, key=lambda p: _rank(p.name, seed))
        count = max(1, round(held_out_fraction * len(ordered))) if len(ordered) > 1 else 0
        held.update(p.name for p in ordered[:count])
    return ShapeSplit(tuple(p for p in programs if p.name not in held), tuple(p for p in programs if p.name in held))


def perturb(program: ShapeProgram, rng: np.random.Generator, amount: float = 0.15) -> ShapeProgram:
    """A variation of ``program`` of the same super class (see the module's docstring): lengths and
    radii within ``amount`` (relative), angles and turns within a fifth of it (a closed figure stays nearly closed)."""
    if amount <= 0:
        return program
    sizes: dict[float, float] = {}
    angles: dict[float, float] = {}

    def size(value: float) -> float:
        if value not in sizes:
            sizes[value] = float(rng.uniform(1 - amount, 1 + amount))
        return round(value * sizes[value], 4)

    def angle(value: float) -> float:
        key = abs(value)
        if key not in angles:
            angles[key] = float(rng.uniform(1 - amount / 5, 1 + amount / 5))
        return round(value * angles[key], 3)

    actions = tuple(
        Action(a.kind, length=size(a.length) if a.kind == "line" else 0.0, radius=size(a.radius) if a.kind == "arc" else 0.0,
               angle=angle(a.angle) if a.kind == "arc" else 0.0, turn=angle(a.turn))
        for a in program.actions
    )  # fmt: skip
    return ShapeProgram(program.name, program.super_class, actions)
