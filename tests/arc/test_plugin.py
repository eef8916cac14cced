"""arc-comm is found through the `trainer_core` entry points and registers its layouts."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from trainer_core.plugins import collect_registry, get_plugin_manager


def test_entry_point_registers_the_layouts():
    (entry,) = [ep for ep in metadata.entry_points(group="trainer_core") if ep.dist.name == "arc-comm"]
    pm = get_plugin_manager(warn=False)
    assert pm.has_plugin(entry.name) and entry.name not in pm.failures
    registry = collect_registry(pm).collect_all()
    owned = sorted(name for (kind, name), owner in registry.owners.items() if owner == entry.name and kind == "layout")
    assert owned == ["arc.pretrained_encoder", "arc.system"]
    assert all(registry.layouts[name].package == "arc-comm" for name in owned)


def test_plugin_import_is_light():
    code = "import sys, arc_comm.plugin; print(sorted(m for m in ('torch', 'jax') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
