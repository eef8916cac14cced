"""The core README's "Writing a package" example is a working plugin on the run API."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

README = Path(__file__).resolve().parents[2] / "packages/core/README.md"


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"README:{name}", "exec"), module.__dict__)  # noqa: S102 - the README's own example
    return module


@pytest.fixture
def tiny(monkeypatch):
    section = README.read_text().split("## Writing a package", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the section shows plugin.py and train.py"
    package = types.ModuleType("tiny")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "tiny", package)
    plugin = _module("tiny.plugin", blocks[0])
    train = _module("tiny.train", blocks[1])
    yield plugin, train
    for name in ("tiny.plugin", "tiny.train"):
        sys.modules.pop(name, None)


def test_the_readme_plugin_trains_lists_shows_loads_and_resumes(tiny, tmp_path):
    from trainer_core import load_model
    from trainer_core.plugins import collect_registry, get_plugin_manager
    from trainer_core.testing import assert_checkpoint_contract, run_core

    plugin, train = tiny
    pm = get_plugin_manager(load_entrypoints=False, plugins=[plugin], warn=False)
    registry = collect_registry(pm).collect_all()
    assert "tiny.train" in registry.layouts and "tiny.train" in registry.schemas and "tiny.regressor" in registry.models

    run = train.train(plugin.TinyConfig(epochs=2), run_dir=tmp_path / "run", pm=pm)
    latest = run.latest()
    assert run.status == "completed" and latest.step == 16 and (tmp_path / "run" / "metrics.jsonl").is_file()
    assert_checkpoint_contract(latest.path, layout="tiny.train", tmp_path=tmp_path, pm=pm)
    assert "tiny.regressor (4 parameters)" in run_core(["show", latest.path], pm).stdout
    assert load_model(latest.path, pm=pm)(torch.zeros(2, 3)).shape == (2, 1)

    resumed = train.train(plugin.TinyConfig(epochs=2), resume=tmp_path / "run", pm=pm)
    assert resumed.position == {"epoch": 2, "step": 16}  # nothing left to do: it continued where it stopped
    rows = json.loads(run_core(["list-checkpoints", str(tmp_path / "run"), "--json"], pm).stdout)
    assert [r["status"] for r in rows] == ["ok", "ok"]
