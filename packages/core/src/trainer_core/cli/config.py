"""``core config schemas | schema NAME | check FILE --schema NAME``: every package's config formats."""

from __future__ import annotations

import json

import click

from trainer_core.cli.context import CoreContext
from trainer_core.cli.support import echo_json, render_table
from trainer_core.errors import UsageError


def _schema(obj: CoreContext, name: str):
    schemas = obj.registry.schemas
    if name not in schemas:
        import difflib

        close = difflib.get_close_matches(name, list(schemas), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UsageError(f"no config schema named {name!r}{hint}; `core config schemas` lists them")
    return schemas[name]


@click.group()
def config() -> None:
    """Config schemas registered by the installed packages: list, export, check a file."""

@config.command("schemas")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def schemas(obj: CoreContext, as_json: bool) -> None:
    """Every registered config schema: name, package, formats, description."""
    registry = obj.registry
    rows = [
        {"name": name, "plugin": registry.owners[("schema", name)], "formats": list(s.formats), "description": s.description}
        for name, s in sorted(registry.schemas.items())
    ]
    if as_json:
        echo_json(rows)
        return
    click.echo(render_table(("NAME", "PLUGIN", "FORMATS", "DESCRIPTION"), [(r["name"], r["plugin"], ",".join(r["formats"]), r["description"]) for r in rows]))

@config.command("schema")
@click.argument("name")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the JSON Schema to this file instead of stdout.")
@click.pass_obj
def schema(obj: CoreContext, name: str, output: str | None) -> None:
    """Print the JSON Schema of config NAME (point your editor's YAML/JSON support at it)."""
    text = json.dumps(_schema(obj, name).json_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    from trainer_core.checkpoint.atomic import atomic_write_bytes

    try:
        atomic_write_bytes(output, text.encode())
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote the {name} schema to {output}", err=True)

@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--schema", "name", required=True, help="Schema name (see `core config schemas`).")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved config (defaults filled) as JSON.")
@click.pass_obj
def check(obj: CoreContext, file: str, name: str, as_json: bool) -> None:
    """Validate FILE against schema NAME: one line naming the first bad key and exit 2, or ok."""
    from trainer_core.config import config_json

    resolved = _schema(obj, name).check_file(file)
    if as_json:
        echo_json(config_json(resolved))
    else:
        click.echo(f"ok: {file} is a valid {name} config")


def add_commands(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(config)
