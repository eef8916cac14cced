"""Shared fixtures for every package's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def core_pm():
    """A fresh plugin manager with core's default plugins only (no installed entry points)."""
    from trainer_core.plugins import get_plugin_manager

    return get_plugin_manager(load_entrypoints=False, warn=False)


@pytest.fixture
def run_core(core_pm):
    """Run ``core`` in-process against ``core_pm``: ``run_core("list-checkpoints", path)``."""
    from trainer_core.testing import run_core as _run

    def invoke(*args: str, pm=None):
        return _run([str(a) for a in args], pm if pm is not None else core_pm)

    return invoke
