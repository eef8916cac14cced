"""Codebook pictures: one panel per level, every codebook of every group drawn, dead codes counted,
and the plugin draws any event that carries codebooks."""

from __future__ import annotations

import numpy as np
from PIL import Image

from trainer_core import CheckpointInfo, CodebookData, VisualizationEvent
from vizwatch import plugin
from vizwatch.codebooks import render_codebooks


def _codebooks(groups=3, levels=3, codes=20, dim=6, dead_per_book=2):
    rng = np.random.default_rng(0)
    books = []
    for g in range(groups):
        for level in range(1, levels + 1):
            usage = rng.random(codes)
            dead = np.zeros(codes, dtype=bool)
            dead[:dead_per_book] = True
            usage[dead] = 0.0
            books.append(CodebookData(group=f"c{g}", level=level, vectors=rng.normal(size=(codes, dim)) + 3 * g, usage=usage, dead=dead))
    return books


def test_one_panel_per_level_with_every_code_and_the_dead_ones_counted(tmp_path):
    drawn = render_codebooks(_codebooks(), tmp_path / "books.png", method="pca", title="test")
    assert [p["level"] for p in drawn["panels"]] == [1, 2, 3]
    assert all(p["codes"] == 3 * 20 and p["dead"] == 3 * 2 and p["codebooks"] == 3 for p in drawn["panels"])
    width, height = Image.open(drawn["path"]).size
    assert width > 2.5 * height  # three panels side by side


def test_two_levels_give_two_panels_and_tsne_is_used_when_asked(tmp_path):
    drawn = render_codebooks(_codebooks(groups=2, levels=2, dead_per_book=0), tmp_path / "two.png", method="tsne")
    assert len(drawn["panels"]) == 2 and drawn["method"] == "tsne" and all(p["dead"] == 0 for p in drawn["panels"])


def test_the_plugin_draws_an_event_with_codebooks_beside_the_run(tmp_path):
    event = VisualizationEvent(run_dir=tmp_path, epoch=7, step=70, package="demo", codebooks=_codebooks(groups=2))
    plugin.visualize_checkpoint(event=event, checkpoint=CheckpointInfo(path=str(tmp_path / "last.pt")))
    (drawn,) = event.options["drawn"]
    assert drawn["path"] == str(tmp_path / "codebooks_epoch_007.png") and (tmp_path / "codebooks_epoch_007.png").stat().st_size > 10_000
