"""The plugin host: a fresh manager per call, safe entry-point loading, collected registries.

Core's own features (metric sinks, the example trainer, the stage layout) are plugins registered
through the same hooks a third party uses. A plugin that fails to import, or implements a hook
that does not exist, is skipped with one warning line; the rest keeps working.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from trainer_core import hookspecs
from trainer_core.config import ConfigSchema
from trainer_core.layouts import CheckpointLayout

ENTRY_POINT_GROUP = "trainer_core"
DEFAULT_PLUGINS = (
    "trainer_core.default_plugins.sinks",
    "trainer_core.default_plugins.example",
    "trainer_core.default_plugins.stages",
)


class TrainerPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers each plugin's distribution and any load failures."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, tuple[str, str]] = {}
        self.failures: dict[str, str] = {}

    def register_checked(self, plugin: Any, name: str) -> bool:
        """Register ``plugin``; undo and record a failure if a hookimpl matches no hookspec."""
        try:
            self.register(plugin, name=name)
            self.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.is_registered(plugin):
                self.unregister(plugin)
            self.failures[name] = str(exc).splitlines()[0]
            return False
        return True


def get_plugin_manager(*, load_entrypoints: bool = True, plugins: Iterable[Any] = (), warn: bool = True) -> TrainerPluginManager:
    """A new manager with core's default plugins, installed plugins and ``plugins`` given here."""
    pm = TrainerPluginManager()
    core_version = _dist_version("trainer-core")
    for module_name in DEFAULT_PLUGINS:
        pm.register_checked(importlib.import_module(module_name), module_name)
        pm.distributions[module_name] = ("trainer-core", core_version)
    if load_entrypoints:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
                pm.failures[ep.name] = f"import failed: {type(exc).__name__}: {exc}"
                continue
            if pm.register_checked(plugin, ep.name) and ep.dist is not None:
                pm.distributions[ep.name] = (ep.dist.name, ep.dist.version)
    for plugin in plugins:
        pm.register_checked(plugin, getattr(plugin, "__name__", None) or repr(plugin))
    if warn:
        for name, reason in pm.failures.items():
            print(f"warning: plugin {name!r} skipped: {reason}", file=sys.stderr)
    return pm


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Registry:
    """Everything registered by the plugins, with the plugin that registered each item."""

    layouts: dict[str, CheckpointLayout] = field(default_factory=dict)
    schemas: dict[str, ConfigSchema] = field(default_factory=dict)
    sinks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _collect(pm: pluggy.PluginManager, hook_name: str, kind: str, key: Callable[..., str], store: dict, registry: Registry) -> None:
    for impl in getattr(pm.hook, hook_name).get_hookimpls():

        def register(*args: Any, _plugin: str = impl.plugin_name) -> None:
            name = key(*args)
            if name in store:
                registry.problems.append(f"{kind} {name!r} from {_plugin} ignored: already registered by {registry.owners[(kind, name)]}")
                return
            store[name] = args[-1] if len(args) > 1 else args[0]
            registry.owners[(kind, name)] = _plugin

        try:
            impl.function(register)
        except Exception as exc:  # noqa: BLE001
            registry.problems.append(f"plugin {impl.plugin_name} failed in {hook_name}: {exc}")


def collect_registry(pm: pluggy.PluginManager) -> Registry:
    registry = Registry()
    _collect(pm, "register_checkpoint_layouts", "layout", lambda layout: layout.name, registry.layouts, registry)
    _collect(pm, "register_config_schemas", "schema", lambda schema: schema.name, registry.schemas, registry)
    _collect(pm, "register_metric_sinks", "sink", lambda name, factory: name, registry.sinks, registry)
    return registry


def implemented_hooks(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
