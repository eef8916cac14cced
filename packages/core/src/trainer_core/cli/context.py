"""What every ``core`` command receives: the plugin manager and, collected on first use, its registry."""

from __future__ import annotations

from functools import cached_property

import click

from trainer_core.plugins import Registry, TrainerPluginManager, collect_registry


class CoreContext:
    def __init__(self, pm: TrainerPluginManager) -> None:
        self.pm = pm

    @cached_property
    def registry(self) -> Registry:
        return collect_registry(self.pm)

    def warn_problems(self) -> None:
        for problem in self.registry.problems:
            click.echo(f"warning: {problem}", err=True)
