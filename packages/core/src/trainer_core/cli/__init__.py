"""The ``core`` command: one module per command group, plus every plugin's ``register_commands``.

- :mod:`trainer_core.cli.checkpoints`: ``list-checkpoints``, ``show``, ``verify``, ``prune``
- :mod:`trainer_core.cli.plugins`: ``plugins``
- :mod:`trainer_core.cli.config`: ``config schemas``, ``config schema``, ``config check``
"""

from __future__ import annotations

import click

from trainer_core.cli import checkpoints, config, plot, plugins
from trainer_core.cli.context import CoreContext
from trainer_core.cli.support import TrainerGroup
from trainer_core.plugins import TrainerPluginManager, get_plugin_manager


def build_cli(pm: TrainerPluginManager | None = None) -> click.Group:
    """The ``core`` group with core's commands and every plugin's ``register_commands``."""
    pm = pm if pm is not None else get_plugin_manager()

    @click.group(cls=TrainerGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="trainer-core", prog_name="core")
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        """Checkpoints, metrics and plugins shared by every trainer of the monorepo.

        Every package registers its checkpoint layouts through the `trainer_core` entry points,
        so the commands below work across packages and read metadata only (no weights).
        """
        ctx.obj = CoreContext(pm)

    checkpoints.add_commands(cli)
    plugins.add_commands(cli)
    config.add_commands(cli)
    plot.add_commands(cli)
    pm.hook.register_commands(cli=cli)
    return cli


def main() -> None:
    build_cli().main(prog_name="core")
