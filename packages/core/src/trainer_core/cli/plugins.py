"""``core plugins``: what every installed plugin registers and implements."""

from __future__ import annotations

import click

from trainer_core.cli.context import CoreContext
from trainer_core.cli.support import echo_json
from trainer_core.plugins import implemented_hooks


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def plugins(obj: CoreContext, as_json: bool) -> None:
    """Installed plugins: distribution, version, layouts, config schemas, sinks, hooks."""
    registry = obj.registry.collect_all()
    obj.warn_problems()
    entries = []
    for name, plugin in obj.pm.list_name_plugin():
        dist, version = obj.pm.distributions.get(name, ("-", "-"))
        owned = {
            kind: sorted(item for (k, item), owner in registry.owners.items() if owner == name and k == kind)
            for kind in ("layout", "schema", "model", "sink")
        }
        entries.append(
            {
                "name": name,
                "distribution": dist,
                "version": version,
                "layouts": owned["layout"],
                "config_schemas": owned["schema"],
                "models": owned["model"],
                "sinks": owned["sink"],
                "hooks": implemented_hooks(obj.pm, plugin),
            }
        )
    failures = [{"name": n, "error": e} for n, e in obj.pm.failures.items()]
    if as_json:
        echo_json({"plugins": entries, "failed": failures})
        return
    for e in entries:
        click.echo(f"{e['name']}  ({e['distribution']} {e['version']})")
        for label in ("layouts", "config_schemas", "models", "sinks", "hooks"):
            if e[label]:
                click.echo(f"    {label.replace('_', ' ')}: {', '.join(e[label])}")
    for f in failures:
        click.echo(f"{f['name']}  FAILED: {f['error']}")


def add_commands(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(plugins)
