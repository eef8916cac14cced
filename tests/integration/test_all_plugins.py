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


def test_every_hookspec_has_an_implementer_in_this_repo():
    import inspect

    from trainer_core import hookspecs

    hooks = [name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "trainer_core_spec")]
    pm = get_plugin_manager(warn=False)
    unimplemented = [name for name in hooks if not getattr(pm.hook, name).get_hookimpls()]
    assert not unimplemented, f"hooks no installed plugin implements: {unimplemented}"


def test_plugins_command_lists_installed_packages():
    result = run_core(["plugins", "--json"], get_plugin_manager(warn=False))
    data = json.loads(result.stdout)
    by_dist = {p["distribution"]: p for p in data["plugins"]}
    for dist in ("trainer-core", "spinlock-vqvae", "choice2vec", "arc-comm", "bongard-detector", "vizwatch"):
        assert dist in by_dist, dist
    assert "core.example" in [layout for p in data["plugins"] for layout in p["layouts"]]
    assert by_dist["arc-comm"]["layouts"] == ["arc.pretrained_encoder", "arc.system"]
    assert "register_checkpoint_layouts" in by_dist["vizwatch"]["hooks"]
