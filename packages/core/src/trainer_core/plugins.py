"""The plugin host: a fresh manager per call, safe entry-point loading, collected registries.

Core's own features (metric sinks, the example trainer, the stage layout) are plugins registered
through the same hooks a third party uses. A plugin that fails to import, or implements a hook
that does not exist, is skipped with one warning line; the rest keeps working.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from functools import cached_property
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from trainer_core import hookspecs

if TYPE_CHECKING:
    from trainer_core.config import ConfigSchema
    from trainer_core.layouts import CheckpointLayout
    from trainer_core.models import ModelSpec

ENTRY_POINT_GROUP = "trainer_core"
DEFAULT_PLUGINS = (
    "trainer_core.default_plugins.sinks",
    "trainer_core.default_plugins.example",
    "trainer_core.default_plugins.stages",
    "trainer_core.default_plugins.run_record",
    "trainer_core.default_plugins.mlflow_tracking",
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


class Registry:
    """Everything registered by the plugins, with the plugin that registered each item.

    Each kind is collected on first use, so listing checkpoints never runs (or imports what)
    the config-schema hooks need.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.owners: dict[tuple[str, str], str] = {}
        self.problems: list[str] = []

    def _collect(self, hook_name: str, kind: str, key: Callable[..., str]) -> dict[str, Any]:
        """Call ``pm.hook.<hook_name>(register=...)`` once per implementing plugin.

        Each call goes through pluggy's hook caller (so wrappers and tracing apply), restricted to
        one plugin at a time: every item is attributed to its plugin, and one plugin that raises
        is reported in ``problems`` without losing the others' registrations.
        """
        store: dict[str, Any] = {}
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        plugins = [impl.plugin for impl in impls]
        for impl in impls:

            def register(*args: Any, _plugin: str = impl.plugin_name) -> None:
                name = key(*args)
                if name in store:
                    self.problems.append(f"{kind} {name!r} from {_plugin} ignored: already registered by {self.owners[(kind, name)]}")
                    return
                store[name] = args[-1]
                self.owners[(kind, name)] = _plugin

            caller = self.pm.subset_hook_caller(hook_name, remove_plugins=[p for p in plugins if p is not impl.plugin])
            try:
                caller(register=register)
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the others
                self.problems.append(f"plugin {impl.plugin_name} failed in {hook_name}: {exc}")
        return store

    @cached_property
    def layouts(self) -> dict[str, CheckpointLayout]:
        return self._collect("register_checkpoint_layouts", "layout", lambda layout: layout.name)

    @cached_property
    def schemas(self) -> dict[str, ConfigSchema]:
        return self._collect("register_config_schemas", "schema", lambda schema: schema.name)

    @cached_property
    def models(self) -> dict[str, ModelSpec]:
        return self._collect("register_models", "model", lambda spec: spec.name)

    @cached_property
    def sinks(self) -> dict[str, Callable[..., Any]]:
        return self._collect("register_metric_sinks", "sink", lambda name, factory: name)

    def collect_all(self) -> Registry:
        self.layouts, self.schemas, self.models, self.sinks  # noqa: B018 - collect every kind now
        return self


def collect_registry(pm: pluggy.PluginManager) -> Registry:
    """The registry of ``pm``'s plugins (each kind collected when first used)."""
    return Registry(pm)


def implemented_hooks(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
