"""Small, fast configurations of `vizwatch train` for the tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def small_config(tmp_path):
    from vizwatch.trainer.config import VizwatchConfig

    def make(**overrides):
        base = dict(
            samples=900, epochs=4, batch_size=128, viz_root=str(tmp_path / "viz"), viz_worker="thread", viz_method="pca", hidden_size=32
        )
        return VizwatchConfig(**{**base, **overrides})

    return make


@pytest.fixture
def pm():
    from trainer_core.plugins import get_plugin_manager

    return get_plugin_manager(warn=False)
