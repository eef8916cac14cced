"""The designers' attributes of the human-designed shapes: an auxiliary target of the shape classifier.

Bongard-LOGO ships, for each of its human-designed shapes, 26 yes/no attributes its designers
wrote down (``data/human_designed_shapes_attributes.tsv``: convex, has a curve, has seven straight
lines, thin, closed, has a line crossing, two parts, necked, contains a triangle, ...). They say
*why* a figure belongs to its super class in words that carry over to figures never seen, so the
shape classifier also predicts them from its pooled features (``shape_classifier``); they are never
an input. A value other than 0 or 1 (-1, "not decided"; one ``10``, a typo) is masked out, as is
every shape not in the table (the synthetic families, a TSV of other programs).
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import torch

NAME = "shape function name"
NOT_ATTRIBUTES = (NAME, "super class")
ATTRIBUTE_COUNT = 26  # the table's columns past the name and the super class (checked by the tests)


def human_designed_attributes() -> Path:
    """The attribute table shipped with the package (MIT, NVlabs/Bongard-LOGO)."""
    return Path(__file__).parent / "data" / "human_designed_shapes_attributes.tsv"


@cache
def attribute_table() -> tuple[tuple[str, ...], dict[str, tuple[tuple[float, ...], tuple[bool, ...]]]]:
    """(the attribute names, shape function name -> (values 0/1, which of them are known)), read once."""
    with open(human_designed_attributes(), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        names = tuple(c for c in reader.fieldnames or () if c not in NOT_ATTRIBUTES)
        table = {}
        for row in reader:
            raw = [row[n].strip() for n in names]
            table[row[NAME]] = (tuple(float(v == "1") for v in raw), tuple(v in ("0", "1") for v in raw))
    return names, table


def shape_attributes(shapes: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """(``[N, ATTRIBUTE_COUNT]`` values, the same-shaped mask of the known ones) of shapes named by
    their shape function name (None or an unknown name: all masked)."""
    _, table = attribute_table()
    unknown = ((0.0,) * ATTRIBUTE_COUNT, (False,) * ATTRIBUTE_COUNT)
    rows = [table.get(name, unknown) if name else unknown for name in shapes]
    values = torch.tensor([r[0] for r in rows], dtype=torch.float32).reshape(-1, ATTRIBUTE_COUNT)
    known = torch.tensor([r[1] for r in rows], dtype=torch.bool).reshape(-1, ATTRIBUTE_COUNT)
    return values, known
