"""Across packages: every installed plugin loads together, with no clashing layout names."""

from __future__ import annotations

from trainer_core.plugins import collect_registry, get_plugin_manager


def test_all_plugins_load_together_without_conflicts():
    pm = get_plugin_manager(warn=False)
    assert pm.failures == {}
    registry = collect_registry(pm).collect_all()
    assert registry.problems == []
    packages = {layout.package for layout in registry.layouts.values()}
    assert packages >= {"trainer-core", "spinlock-vqvae", "choice2vec", "arc-comm", "bongard-detector", "vizwatch"}
