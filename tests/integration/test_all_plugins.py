"""Across packages: every installed plugin loads together, with no clashing layout names."""

from __future__ import annotations

import json

from trainer_core.plugins import collect_registry, get_plugin_manager
from trainer_core.testing import run_core


def test_all_plugins_load_together_without_conflicts():
    pm = get_plugin_manager(warn=False)
    assert pm.failures == {}
    registry = collect_registry(pm).collect_all()
    assert registry.problems == []
    packages = {layout.package for layout in registry.layouts.values()}
    assert packages >= {"trainer-core", "spinlock-vqvae", "choice2vec", "arc-comm", "bongard-detector", "vizwatch"}


def test_one_listing_spans_packages(tmp_path):
    from trainer_core.checkpoint import CheckpointManager

    for package, layout in (("spinlock-vqvae", "vqvae.training"), ("choice2vec", "choice2vec.checkpoint")):
        CheckpointManager(tmp_path / package, package=package, layout=layout).save(
            {"state.json": {"ok": True}}, step=1, metrics={"val_loss": 0.5}
        )
    rows = json.loads(run_core(["list-checkpoints", str(tmp_path), "--json"]).stdout)
    assert sorted(r["package"] for r in rows) == ["choice2vec", "spinlock-vqvae"]
    assert all(r["headline"] for r in rows)  # each layout's headline metrics were applied
