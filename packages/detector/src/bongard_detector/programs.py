"""Bongard-LOGO action programs: parsing the TSV format and tracing a program into strokes.

A program is a sequence of base actions with one turn before each (the format of Bongard-LOGO's
``human_designed_shapes.tsv``)::

    shape function name  shape name  super class  set of base actions             turn angles
    equilateral_traingle ...         triangle     line_1.0, line_1.0, line_1.0    L0--L120.0--L120.0

* ``line_<length>``: move forward ``length`` units;
* ``arc_<radius>_<angle>``: move along a circle of ``radius`` units through ``angle`` degrees,
  counter-clockwise (centre on the turtle's left) when positive, clockwise when negative;
* ``L<deg>`` / ``R<deg>``: turn left / right before the action.

The turtle starts at the origin heading along +x. A super class with a ``*`` (``hexagon*``) names
the same class as without it.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = ("triangle", "quadrangle", "pentagon", "hexagon", "heptagon", "octagon", "enneagon", "sector", "quasi_sector", "arc")
COLUMNS = ("shape function name", "shape name", "super class", "set of base actions", "turn angles")


def human_designed_shapes() -> Path:
    """The real Bongard-LOGO human-designed shapes shipped with the package (MIT), split by shape in :mod:`bongard_detector.shapes`."""
    return Path(__file__).parent / "data" / "human_designed_shapes.tsv"


class ProgramError(ValueError):
    """A program (or a TSV row) that cannot be parsed; the message names the row and the fix."""


@dataclass(frozen=True)
class Action:
    kind: str  # "line" | "arc"
    length: float = 0.0  # line length
    radius: float = 0.0  # arc radius
    angle: float = 0.0  # arc angle, degrees (negative: clockwise)
    turn: float = 0.0  # turn before the action, degrees (positive: left)

    def text(self) -> str:
        return f"line_{self.length:g}" if self.kind == "line" else f"arc_{self.radius:g}_{self.angle:g}"


@dataclass(frozen=True)
class ShapeProgram:
    name: str
    super_class: str
    actions: tuple[Action, ...]

    @property
    def category(self) -> int:
        return CLASSES.index(self.super_class)

    def row(self) -> dict[str, str]:
        """The TSV row of this program (round-trips through :func:`parse_program`)."""
        turns = "--".join(("L" if a.turn >= 0 else "R") + f"{abs(a.turn):g}" for a in self.actions)
        return {
            COLUMNS[0]: self.name, COLUMNS[1]: self.name.replace("_", " "), COLUMNS[2]: self.super_class,
            COLUMNS[3]: ", ".join(a.text() for a in self.actions), COLUMNS[4]: turns,
        }  # fmt: skip


def parse_action(text: str, turn: float) -> Action:
    parts = text.strip().split("_")
    try:
        if parts[0] == "line" and len(parts) == 2:
            return Action("line", length=float(parts[1]), turn=turn)
        if parts[0] == "arc" and len(parts) == 3:
            return Action("arc", radius=float(parts[1]), angle=float(parts[2]), turn=turn)
    except ValueError:
        pass
    raise ProgramError(f"action {text.strip()!r}: expected line_<length> or arc_<radius>_<angle>")


def parse_turn(text: str) -> float:
    text = text.strip()
    if text[:1] not in ("L", "R"):
        raise ProgramError(f"turn {text!r}: expected L<degrees> or R<degrees>")
    try:
        value = float(text[1:])
    except ValueError:
        raise ProgramError(f"turn {text!r}: expected L<degrees> or R<degrees>") from None
    return value if text[0] == "L" else -value


def parse_program(name: str, super_class: str, actions: str, turns: str) -> ShapeProgram:
    cls = super_class.strip().rstrip("*")
    if cls not in CLASSES:
        raise ProgramError(f"super class {super_class!r}: expected one of {', '.join(CLASSES)} (a trailing * is allowed)")
    action_texts = [a for a in actions.split(",") if a.strip()]
    turn_texts = [t for t in turns.split("--") if t.strip()]
    if len(action_texts) != len(turn_texts) or not action_texts:
        raise ProgramError(f"{len(action_texts)} actions but {len(turn_texts)} turns: give one turn per action")
    return ShapeProgram(name, cls, tuple(parse_action(a, parse_turn(t)) for a, t in zip(action_texts, turn_texts, strict=True)))


def read_programs(path: str | Path) -> list[ShapeProgram]:
    """Every program of a TSV in the Bongard-LOGO format; a bad row raises ProgramError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ProgramError(f"{path}: no such file; give a TSV in the Bongard-LOGO format (columns: {', '.join(COLUMNS)})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ProgramError(
            f"{path} is not a UTF-8 text file; give a TSV in the Bongard-LOGO format (columns: {', '.join(COLUMNS)})"
        ) from None
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = [c for c in (COLUMNS[0], COLUMNS[2], COLUMNS[3], COLUMNS[4]) if c not in (reader.fieldnames or [])]
        if missing:
            raise ProgramError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; the header must have {', '.join(COLUMNS)}")
        programs = []
        for line, row in enumerate(reader, start=2):
            try:
                programs.append(parse_program(row[COLUMNS[0]], row[COLUMNS[2]], row[COLUMNS[3]], row[COLUMNS[4]]))
            except (ProgramError, AttributeError) as exc:
                raise ProgramError(f"{path}:{line}: {exc}") from None
    if not programs:
        raise ProgramError(f"{path}: no programs")
    return programs


def write_programs(programs: list[ShapeProgram], path: str | Path) -> Path:
    """A TSV of ``programs`` in the Bongard-LOGO format (read back by :func:`read_programs`), written atomically."""
    from trainer_core import atomic_write_bytes

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(p.row() for p in programs)
    atomic_write_bytes(Path(path), buffer.getvalue().encode())
    return Path(path)


def trace(program: ShapeProgram, arc_step_degrees: float = 5.0) -> list[np.ndarray]:
    """The program's strokes in program units: one (N, 2) polyline per action."""
    x, y, heading = 0.0, 0.0, 0.0
    strokes = []
    for action in program.actions:
        heading += math.radians(action.turn)
        if action.kind == "line":
            nx, ny = x + action.length * math.cos(heading), y + action.length * math.sin(heading)
            strokes.append(np.array([[x, y], [nx, ny]]))
            x, y = nx, ny
            continue
        sweep = math.radians(action.angle)
        side = 1.0 if sweep >= 0 else -1.0  # centre on the left for counter-clockwise arcs
        cx, cy = x - side * action.radius * math.sin(heading), y + side * action.radius * math.cos(heading)
        start = math.atan2(y - cy, x - cx)
        n = max(2, int(math.ceil(abs(action.angle) / arc_step_degrees)) + 1)
        t = start + np.linspace(0.0, sweep, n)
        points = np.stack([cx + action.radius * np.cos(t), cy + action.radius * np.sin(t)], 1)
        strokes.append(points)
        x, y = points[-1]
        heading += sweep
    return strokes
