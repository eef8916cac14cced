"""spinlock-vqvae is found through the `trainer_core` entry points and registers its layouts."""

from __future__ import annotations

from trainer_core.testing import assert_light_import, assert_plugin_registered


def test_entry_point_registers_the_layouts():
    assert_plugin_registered("spinlock-vqvae", ["vqvae.training", "vqvae.ano"])


def test_plugin_import_is_light():
    assert_light_import("spinlock_vqvae.plugin")
