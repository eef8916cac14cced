"""The shared contract kit, run on core's own example layout."""

from __future__ import annotations

import pytest

from trainer_core.testing import assert_checkpoint_contract


def test_example_layout_contract(tmp_path, core_pm):
    pytest.importorskip("torch")
    from trainer_core.example.config import ExampleConfig
    from trainer_core.example.trainer import train

    summary = train(ExampleConfig(epochs=1, samples=200), tmp_path / "run", pm=core_pm, progress=False)
    assert_checkpoint_contract(summary["latest_checkpoint"], layout="core.example", tmp_path=tmp_path, pm=core_pm)
